"""The web process under gunicorn against a Redis that may evict, or that is full.

Each test starts a Redis of its own: its maxmemory settings are changed, never those of the
session's Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
import requests

from service.intake import signatures
from tests.e2e.conftest import KEY_HEX, Web
from tests.ownredis import own_redis, url_of

__all__ = ["own_redis"]  # a fixture: pytest finds it here


def started_lines(web: Web, event: str) -> list[dict[str, Any]]:
    return [line for line in web.lines() if line.get("event") == event]


def webhook_body() -> bytes:
    event = {
        "id": "ev_full_1",
        "object_type": "opportunity",
        "object_id": "oppo_1",
        "action": "updated",
        "date_created": "2026-11-28T03:30:00.000000",
        "date_updated": "2026-11-28T03:30:00.000000",
        "changed_fields": ["status_id"],
        "previous_data": {"status_id": "stat_a"},
        "data": {"id": "oppo_1", "status_id": "stat_b"},
    }
    return json.dumps({"subscription_id": "whsub_1", "event": event}).encode()


def fill(client: redis.Redis) -> None:
    """Write 64 KiB values until Redis refuses one for lack of memory, then keep it full.

    A refused write's own argument counted while it sat in the query buffer; once it is
    dropped Redis has room again for a small write. So maxmemory is then set just below what
    Redis holds: every write that needs memory is refused from now on."""
    for written in range(10_000):
        try:
            client.set(f"filler:{written}", b"x" * 65536)
        except redis.exceptions.OutOfMemoryError:
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", str(used - 65536))
            return
    raise AssertionError("Redis never refused a write: is maxmemory set?")


def test_web_on_an_evicting_redis_logs_an_error_and_is_not_ready(
    start_web: Callable[..., Web], own_redis: redis.Redis
) -> None:
    """allkeys-lru: ERROR `redis_may_evict` at start, and /readyz 503 naming the policy and
    the Heroku command that fixes it."""
    own_redis.config_set("maxmemory-policy", "allkeys-lru")
    web = start_web(REDIS_URL=url_of(own_redis))

    response = requests.get(f"{web.url}/readyz", timeout=5)

    [problem] = response.json()["problems"]
    assert 503 == response.status_code
    assert problem.startswith("redis: Redis maxmemory-policy is allkeys-lru: ")
    assert "heroku redis:maxmemory REDIS_URL --policy noeviction" in problem
    [logged, *_] = started_lines(web, "redis_may_evict")
    assert ("error", "allkeys-lru") == (logged["level"], logged["policy"])


def test_web_on_a_noeviction_redis_is_ready_and_quiet(
    start_web: Callable[..., Web], own_redis: redis.Redis
) -> None:
    """noeviction (Redis's default, and the embedded Redis's): /readyz 200, nothing logged."""
    web = start_web(REDIS_URL=url_of(own_redis))

    response = requests.get(f"{web.url}/readyz", timeout=5)

    assert 200 == response.status_code
    assert [] == started_lines(web, "redis_may_evict")


def test_web_on_a_full_redis_answers_503_and_writes_nothing(
    start_web: Callable[..., Web], own_redis: redis.Redis
) -> None:
    """A Redis at maxmemory with noeviction refuses the enqueue script's first write: the
    webhook is answered 503 with Retry-After (Close retries), the answer and an ERROR line
    say Redis is full, and no key of the event (dedupe record, pending set, job, queue) was
    written."""
    web = start_web(REDIS_URL=url_of(own_redis))
    own_redis.config_set("maxmemory", str(4 * 1024 * 1024))
    fill(own_redis)
    keys_before = sorted(own_redis.keys("*"))
    body = webhook_body()
    headers = signatures.signed_headers(
        body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())
    )

    response = requests.post(f"{web.url}/webhooks/close", data=body, headers=headers, timeout=5)

    assert 503 == response.status_code
    assert "Retry-After" in response.headers
    assert "Redis is full" in response.json()["error"]
    assert keys_before == sorted(own_redis.keys("*"))
    [logged] = started_lines(web, "webhook_not_queued")
    assert "error" == logged["level"]
    assert logged["reason"].startswith("Redis is full (used memory reached maxmemory)")
