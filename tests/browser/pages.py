"""Driving the console's pages: sign in, open, find, wait on a condition (never a sleep)."""

from __future__ import annotations

import base64
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

# A page of a busy machine's gunicorn answers within this, with a wide margin.
PAGE_WAIT_SEC = 30


def open_page(driver: WebDriver, base: str, path: str) -> None:
    driver.get(base + path)


def sign_in(driver: WebDriver, base: str, password: str, *, path: str = "/console/") -> None:
    driver.get(base + path)
    wait_for_element(driver, "#password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(driver, PAGE_WAIT_SEC).until(lambda d: "/console/login" not in d.current_url)


def sign_out(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, "form.who button[type=submit]").click()
    wait_for_element(driver, "#password")


def wait_for_element(driver: WebDriver, css: str, *, timeout: float = PAGE_WAIT_SEC) -> WebElement:
    found: WebElement = WebDriverWait(driver, timeout).until(
        lambda d: d.find_element(By.CSS_SELECTOR, css)
    )
    return found


def wait_for_text(
    driver: WebDriver, css: str, text: str, *, timeout: float = PAGE_WAIT_SEC
) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: text in d.find_element(By.CSS_SELECTOR, css).text
    )


def shoot(driver: WebDriver, folder: Path, name: str) -> Path:
    """A screenshot of the whole page, beyond the window's height (Chromium's DevTools)."""
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1},
        },
    )
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
