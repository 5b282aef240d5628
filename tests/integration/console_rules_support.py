"""Signing in to the console with Flask's test client, for the rules and sweeps pages' tests
(the pieces are tests/consoleclient.py's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from flask import Flask
from flask.testing import FlaskClient

from service.config.settings import Settings
from service.web import create_app
from tests.consoleclient import ADMIN_PASSWORD, READ_PASSWORD, csrf_of, sign_in

__all__ = ["ADMIN_PASSWORD", "READ_PASSWORD", "console_app", "csrf_of", "signed_in"]


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
    return client, sign_in(client, ADMIN_PASSWORD if admin else READ_PASSWORD)
