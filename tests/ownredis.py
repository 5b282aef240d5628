"""A Redis started by one test alone, for tests that change its memory settings (never
those of the session's Redis, which other tests share)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.adapters.embedded import RedisServer, free_port


class LockedDownRedis(RedisServer):
    """A Redis that refuses INFO and CONFIG, as some managed services do."""

    def _command(self) -> list[str]:
        renamed = ["--rename-command", "INFO", "", "--rename-command", "CONFIG", ""]
        return [*super()._command(), *renamed]


def url_of(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A Redis started for this test alone, and a client of it."""
    yield from _client_of(
        RedisServer(data_dir=tmp_path / "own-redis", port=free_port(), persistent=False)
    )


@pytest.fixture
def locked_down_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A Redis started for this test alone that refuses INFO and CONFIG."""
    yield from _client_of(
        LockedDownRedis(data_dir=tmp_path / "locked-redis", port=free_port(), persistent=False)
    )


def _client_of(server: RedisServer) -> Iterator[redis.Redis]:
    """Start `server`, hand out a client of it, then close both."""
    with server:
        client = redis.Redis.from_url(server.url)
        yield client
        client.close()
