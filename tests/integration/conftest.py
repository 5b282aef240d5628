"""Fixtures for tests that run dealkeeper's pieces in this process against a real Redis and
the fake Close."""

from __future__ import annotations

import pytest
import redis
from rq import Queue

from service.adapters.queue import make_queue
from service.fakeclose import FakeClose
from service.settings import Settings
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
