"""Signing in, the pages behind it, and a POST without the CSRF token, in a real browser."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.conftest import ADMIN_PASSWORD, READ_PASSWORD
from tests.browser.pages import shoot, sign_in, sign_out, wait_for_element, wait_for_text
from tests.cluster import Cluster

PAGES = ("/console/", "/console/deal", "/console/rules", "/console/parked",
         "/console/sweeps", "/console/report", "/console/playground")  # fmt: skip


def test_no_page_is_reachable_without_signing_in(stack: Cluster, browser: WebDriver) -> None:
    browser.delete_all_cookies()
    for path in PAGES:
        browser.get(stack.web_url + path)
        wait_for_element(browser, "#password")
        assert "/console/login" in browser.current_url, path
        assert "Queue" not in browser.page_source


def test_a_wrong_password_is_refused(stack: Cluster, browser: WebDriver, screenshots: Path) -> None:
    browser.delete_all_cookies()
    browser.get(stack.web_url + "/console/")
    wait_for_element(browser, "#password").send_keys("not the password")
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait_for_text(browser, ".problem", "Wrong password")
    shoot(browser, screenshots, "login")


def test_signing_in_shows_the_overview_and_signing_out_ends_it(
    stack: Cluster, browser: WebDriver, screenshots: Path
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, READ_PASSWORD, path="/console/parked")
    assert browser.current_url.endswith("/console/parked")  # back where the login began
    browser.get(stack.web_url + "/console/")
    wait_for_text(browser, "main", "Queue")
    assert browser.find_element(By.ID, "workers").text == "1"
    assert "read only" in browser.find_element(By.CSS_SELECTOR, "form.who").text
    shoot(browser, screenshots, "overview")
    sign_out(browser)
    browser.get(stack.web_url + "/console/")
    wait_for_element(browser, "#password")


def test_a_post_without_the_csrf_token_is_refused(stack: Cluster, browser: WebDriver) -> None:
    browser.delete_all_cookies()
    sign_in(browser, stack.web_url, ADMIN_PASSWORD)
    # What a page on another site could make the browser send: the session cookie rides
    # along (SameSite=Lax allows a top-level POST form only from this site), the token not.
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch('/console/logout', {method: 'POST', credentials: 'include',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: 'csrf_token=forged'}).then(r => done(r.status));
        """
    )
    assert 403 == status
    browser.get(stack.web_url + "/console/")
    wait_for_text(browser, "main", "Queue")  # still signed in: the forged POST did nothing
