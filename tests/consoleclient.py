"""A Flask test client of the whole web app (service.web) with the console on, signed in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from service.config.settings import Settings
from service.web import create_app

READ_PASSWORD = "read-pw-5d1c0e8a7b"
ADMIN_PASSWORD = "admin-pw-93f2b6c4d1"
# The console only sends its cookie over HTTPS (Secure), as a browser would.
BASE_URL = "https://console.test"
WEBHOOK_KEY = bytes.fromhex("5e" * 32)


def console_settings(redis_url: str, rules_path: Path | str, **changes: Any) -> Settings:
    return Settings(
        webhook_secrets=(WEBHOOK_KEY,),
        redis_url=redis_url,
        rules_path=str(rules_path),
        console_password=READ_PASSWORD,
        console_admin_password=ADMIN_PASSWORD,
    ).with_changes(**changes)


def console_client(settings: Settings) -> FlaskClient:
    app = create_app(settings)
    app.testing = True
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    client.environ_base["HTTP_HOST"] = "console.test"
    return client


def csrf_of(page_text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', page_text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: FlaskClient, password: str = READ_PASSWORD) -> str:
    """Sign in; the session's CSRF token."""
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={"password": password, "csrf_token": token})
    assert answer.status_code == 302, answer.text
    return csrf_of(client.get("/console/").text)
