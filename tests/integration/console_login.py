"""Signing in to the ops console with Flask's test client, as a browser would: GET the login
form, read its CSRF token, POST the password. For tests/integration/test_console_*.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.processing.worker import make_worker
from tests.consoleclient import ADMIN_PASSWORD, READ_PASSWORD, WEBHOOK_KEY, csrf_of, sign_in
from tests.consoleclient import console_client as https_client

__all__ = [
    "ADMIN_PASSWORD",
    "READ_PASSWORD",
    "console_client",
    "console_settings",
    "csrf_token",
    "park_a_refused_update",
    "sign_in",
    "work",
]


def console_settings(redis_url: str, fake_close: FakeClose, rules_path: str) -> Settings:
    return Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
            "CLOSE_API_URL": fake_close.url,
            "DEALKEEPER_RULES": rules_path,
            "CLOSE_WEBHOOK_SECRET": WEBHOOK_KEY.hex(),
            "DEALKEEPER_CONSOLE_PASSWORD": READ_PASSWORD,
            "DEALKEEPER_CONSOLE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
    )


def csrf_token(page: str) -> str:
    """The CSRF token in a page's forms."""
    return csrf_of(page)


@pytest.fixture
def console_client(
    settings: Settings, redis_url: str, fake_close: FakeClose
) -> Iterator[Callable[[str], FlaskClient]]:
    """A signed-in test client of the real web app (intake and console) for a password."""
    apps: list[Flask] = []

    def make(password: str) -> FlaskClient:
        client = https_client(console_settings(redis_url, fake_close, settings.rules_path))
        apps.append(client.application)
        sign_in(client, password)
        return client

    yield make
    for app in apps:
        app.extensions["dealkeeper"].connection.close()


def work(settings: Settings) -> None:
    """Run a real worker until the queue is empty."""
    make_worker(settings).work(burst=True, with_scheduler=False)


def park_a_refused_update(fake_close: FakeClose, queue: Queue, settings: Settings) -> str:
    """A real worker parks an event because Close answers its update 400 (a Segment choice
    the field does not have, as tests/integration/test_reliability.py parks them); returns
    the opportunity's id. Adds the Segment field on first use."""
    if not any(f["name"] == "Segment" for f in fake_close.store.custom_fields.values()):
        fake_close.add_custom_field(
            "Segment", type="choices", accepts_multiple_values=True, choices=["SMB"]
        )
    oppo = fake_close.add_opportunity(value=500000)
    raw = fake_close.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None
    enqueue_event(event_from_dict(raw), queue=queue)
    work(settings)
    return str(oppo["id"])
