"""A deal found from a pasted Close URL, with its history; a parked event retried from the
console and then applied by the stack's worker, in a real browser."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import ADMIN_PASSWORD, READ_PASSWORD
from tests.browser.pages import shoot, sign_in, wait_for_element, wait_for_text
from tests.cluster import Cluster

# A webhook through gunicorn, a worker's job and its PUT on a busy machine: seconds at most.
WORK_WAIT_SEC = 60
FIELD_ERRORS = {"error": "", "field-errors": {"date_won": "Not a valid date."}}


def won_deal(stack: Cluster) -> str:
    deals = [d for d in stack.fake.store.opportunities.values() if d["status_type"] == "active"]
    deal = str(deals[-1]["id"])
    stack.fake.user_update(deal, {"status_id": stack.fake.status_id("Won")})
    return deal


def test_a_pasted_close_url_finds_the_deal_and_its_history(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    won = [e for e in stack.fake.events if e["action"] == "updated" and e["api_key_id"] is None]
    deal, lead = won[0]["object_id"], won[0]["lead_id"]
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/deal")
    box = wait_for_element(browser, "#deal-q")
    box.send_keys(f"https://app.close.com/lead/{lead}/opportunity/{deal}/#activity")
    browser.find_element(By.ID, "deal-go").click()
    history = wait_for_element(browser, "#deal-history")
    assert "stamp-date-won" in history.text
    assert deal in (browser.find_element(By.ID, "deal-close-link").get_attribute("href") or "")
    shoot(browser, screenshots, "deal")


def test_a_parked_event_retried_from_the_console_is_applied(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    stack.fake.fail_next(1, status=400, method="PUT", body=FIELD_ERRORS)
    deal = won_deal(stack)
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, ADMIN_PASSWORD, path="/console/parked")

    def parked(driver: WebDriver) -> bool:
        if deal in driver.find_element(By.TAG_NAME, "main").text:
            return True
        driver.refresh()
        return False

    WebDriverWait(browser, WORK_WAIT_SEC, poll_frequency=1).until(parked)
    assert "Not a valid date." in browser.find_element(By.ID, "parked-events").text
    shoot(browser, screenshots, "parked")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#parked-events tr") if deal in r.text
    )
    row.find_element(By.CSS_SELECTOR, "form.retry-one button").click()
    wait_for_element(browser, "#parked-message")
    WebDriverWait(browser, WORK_WAIT_SEC).until(
        lambda _: stack.fake.opportunity(deal).get("date_won")
    )
    browser.get(f"{stack.web_url}/console/deal?q={deal}")
    wait_for_text(browser, "#deal-history", "applied")


def test_the_read_role_cannot_retry_or_purge(stack: Cluster, browser: WebDriver) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/parked")
    wait_for_element(browser, "main")
    assert [] == browser.find_elements(By.ID, "retry-all")
    assert [] == browser.find_elements(By.ID, "purge")
