"""The rules page (counts from real jobs, explain an event) and the sweeps page (a dry run
that writes nothing), in a real browser."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import ADMIN_PASSWORD, READ_PASSWORD
from tests.browser.pages import shoot, sign_in, wait_for_element, wait_for_text
from tests.cluster import Cluster


def test_the_rules_page_counts_firings_and_explains_an_event(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/rules")
    table = wait_for_element(browser, "#rules-table")
    row = next(
        r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr") if "stamp-date-won" in r.text
    )
    assert any(
        cell.text.strip() not in ("", "0") for cell in row.find_elements(By.CSS_SELECTOR, "td.num")
    )
    shoot(browser, screenshots, "rules")
    won = next(
        e
        for e in reversed(stack.fake.events)
        if e["action"] == "updated" and e["api_key_id"] is None
    )
    field = wait_for_element(browser, "#explain-event")
    field.send_keys(won["id"])
    browser.find_element(By.ID, "explain-submit").click()
    wait_for_text(browser, "#explain-output", "stamp-date-won")
    shoot(browser, screenshots, "explain")


def test_a_sweeps_dry_run_shows_what_it_would_write_and_writes_nothing(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, ADMIN_PASSWORD, path="/console/sweeps")
    wait_for_text(browser, "#sweep-1", "stale-deals")
    puts_before = len(stack.fake.requests_matching("PUT"))
    browser.find_element(By.ID, "dry-run-1").click()
    result = wait_for_element(browser, "#dry-run-result", timeout=60)  # 15 s budget + load
    assert "confidence" in result.text
    assert puts_before == len(stack.fake.requests_matching("PUT"))
    shoot(browser, screenshots, "sweeps")


def test_the_read_role_sees_no_dry_run_button(stack: Cluster, browser: WebDriver) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/sweeps")
    wait_for_text(browser, "#sweep-1", "stale-deals")
    assert [] == browser.find_elements(By.ID, "dry-run-1")
