"""Fixtures for tests that run dealkeeper's pieces in this process against a real Redis and
the fake Close."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue

from fakeclose import FakeClose
from service.adapters.queue import make_queue
from service.config.settings import Settings
from service.intake.app import create_app
from tests.conftest import RULES_DIR


@pytest.fixture
def settings(redis_url: str, fake_close: FakeClose) -> Settings:
    """Settings that point at the test's Redis, the fake Close and the shipped rules."""
    return Settings(
        close_api_key=FakeClose.DEFAULT_API_KEY,
        close_api_url=fake_close.url,
        redis_url=redis_url,
        rules_path=str(RULES_DIR),
    )


@pytest.fixture
def queue(redis_client: redis.Redis) -> Queue:
    """The event queue, as the web and the workers see it."""
    return make_queue(redis_client)


@pytest.fixture
def web_client_for() -> Iterator[Callable[..., FlaskClient]]:
    """Flask test clients of the web app for given settings and a fixed clock; each app's
    Redis connections are closed after the test."""
    apps = []

    def make(settings: Settings, *, now: float) -> FlaskClient:
        app = create_app(settings, clock=lambda: now)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["dealkeeper"].connection.close()
