"""The hygiene report (refreshed by a real worker, its CSV downloaded) and the rule
playground (a broken file's error on its line; a backtest), in a real browser."""

from __future__ import annotations

import csv
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import READ_PASSWORD
from tests.browser.pages import PAGE_WAIT_SEC, shoot, sign_in, wait_for_element, wait_for_text
from tests.cluster import Cluster

# A worker lists 300 deals through the shared rate limit: seconds, and far more when busy.
REPORT_WAIT_SEC = 120
BROKEN = """rules:
  - name: stamp-date-won
    trigger: opportunity.updated
    if:
      - status_type: {changed_too: won}
    then:
      - set: {date_won: today}
"""


def test_the_report_is_computed_in_the_background_and_downloads_as_csv(
    stack: Cluster, browser: WebDriver, screenshots: Path, downloads: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/report")

    def computed(driver: WebDriver) -> bool:
        if driver.find_elements(By.ID, "report-age"):
            return True
        driver.refresh()  # the page says "Refreshing": a person reloads too
        return False

    WebDriverWait(browser, REPORT_WAIT_SEC, poll_frequency=1).until(computed)
    shown = browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_elements(By.ID, "check-big-deals-going-quiet"), shown[:1500]
    shoot(browser, screenshots, "report")
    browser.find_element(By.ID, "report-csv").click()
    found = WebDriverWait(browser, PAGE_WAIT_SEC).until(
        lambda _: [p for p in downloads.glob("*.csv") if p.stat().st_size > 0]
    )
    rows = list(csv.reader(found[0].read_text().splitlines()))
    assert len(rows) > 1
    assert "big-deals-going-quiet" in {cell for row in rows for cell in row}


def test_a_broken_rules_file_shows_its_error_on_its_line(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/playground")
    area = wait_for_element(browser, "#rules-text")
    area.clear()
    area.send_keys(BROKEN)
    browser.find_element(By.ID, "validate-button").click()
    wait_for_element(browser, "#validation-rejected")
    line = browser.find_element(By.ID, "line-5")
    assert "has-problem" in (line.get_attribute("class") or "")
    assert "changed_too" in line.text
    assert "changed_to" in line.find_element(By.CSS_SELECTOR, ".line-problem").text
    shoot(browser, screenshots, "playground")


def test_a_pasted_file_backtests_against_the_rules_in_force(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/playground")
    area = wait_for_element(browser, "#rules-text")
    area.clear()
    area.send_keys(BROKEN.replace("changed_too", "changed_to").replace("today", "yesterday"))
    browser.find_element(By.ID, "backtest-button").click()
    wait_for_element(browser, "#validation-ok", timeout=60)
    wait_for_text(browser, "#backtest", "changed", timeout=60)
    shoot(browser, screenshots, "backtest")
