"""Fixtures for adapter tests: a running FakeClose and CloseClients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fakeclose import FakeClose
from service.adapters.close import CloseClient

# Distinctive, so a leak into a message or a log record is easy to find.
API_KEY = "sk-dealkeeper-test-5f1c9a2e"
API_KEY_ID = "api_testkey"


class RecordingSleep:
    """Stands in for time.sleep: remembers each wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_close() -> Iterator[FakeClose]:
    """A FakeClose on loopback that knows API_KEY."""
    with FakeClose(api_keys={API_KEY: API_KEY_ID}) as fake:
        yield fake


@pytest.fixture
def sleeps() -> RecordingSleep:
    """The waits a client asked for."""
    return RecordingSleep()


@pytest.fixture
def make_client(
    fake_close: FakeClose, sleeps: RecordingSleep
) -> Iterator[Callable[..., CloseClient]]:
    """Builds clients for fake_close (recorded sleeps, fixed jitter 0.5); closes them after."""
    clients: list[CloseClient] = []

    def make(**options: Any) -> CloseClient:
        settings: dict[str, Any] = {
            "base_url": fake_close.url,
            "sleep": sleeps,
            "rand": lambda: 0.5,
            "connect_timeout_sec": 1.0,
            "read_timeout_sec": 2.0,
        }
        settings.update(options)
        client = CloseClient(settings.pop("api_key", API_KEY), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., CloseClient]) -> CloseClient:
    """A client with the default settings for tests."""
    return make_client()
