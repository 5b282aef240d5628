"""Signing in to the console with Flask's test client, for the rules and sweeps pages' tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from flask import Flask
from flask.testing import FlaskClient

from service.config.settings import Settings
from service.web import create_app

READ_PASSWORD = "read-password-for-tests"
ADMIN_PASSWORD = "admin-password-for-tests"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_app(settings: Settings, *, clock: Callable[[], float]) -> Flask:
    """The web app (intake and console) with both console passwords set."""
    with_console = replace(
        settings,
        console_password=READ_PASSWORD,
        console_admin_password=ADMIN_PASSWORD,
        console_secret="s" * 40,
        webhook_secrets=settings.webhook_secrets or (b"console-tests-webhook-key",),
    )
    return create_app(with_console, clock=clock)


def signed_in(app: Flask, *, admin: bool) -> tuple[FlaskClient, str]:
    """A client signed in as admin or read only, and its CSRF token."""
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = csrf_of(page)
    password = ADMIN_PASSWORD if admin else READ_PASSWORD
    answer = client.post("/console/login", data={"password": password, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    home = client.get("/console/").get_data(as_text=True)
    return client, csrf_of(home)


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, page
    return found.group(1)
