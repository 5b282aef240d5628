"""`dealkeeper status` reads what every process recorded in a real Redis."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from service.adapters.close import Exchange
from service.adapters.embedded import free_port
from service.adapters.queue import make_queue
from service.adapters.stats import Stats
from service.commands.cli import cli
from service.core.retry import RateLimitInfo
from tests.conftest import RULES_DIR


@pytest.fixture
def run(redis_url: str) -> Any:
    """Invoke dealkeeper against the test Redis and the shipped rules."""

    def invoke(*args: str, **env: str | None) -> Result:
        base = {"REDIS_URL": redis_url, "DEALKEEPER_RULES": str(RULES_DIR)}
        return CliRunner().invoke(cli, list(args), env={**base, **env})

    return invoke


def busy(connection: redis.Redis) -> float:
    """Two waiting events, a webhook, a Close answer with its rate limit; returns the time."""
    queue = make_queue(connection)
    for _ in range(2):
        queue.enqueue_call("builtins.len", args=("x",))
    stats = Stats(connection)
    stats.record_webhook(None, outcome="queued")
    stats.incr("events_total", outcome="applied")
    stats.observe_close(Exchange("PUT", "opportunity/o1/", 429, 0.1, RateLimitInfo(20, 0, 2.5)))
    return time.time()


def test_status_json_reports_queue_times_and_rate_limit(
    run: Any, redis_client: redis.Redis
) -> None:
    """--json carries the queue counts, the oldest event's age, the last times and headroom."""
    started = busy(redis_client)

    result = run("status", "--json")

    found = json.loads(result.output)
    assert 0 == result.exit_code, result.output
    assert (2, 0, 0, 0, 0) == (
        found["queue"]["waiting"],
        found["queue"]["in_progress"],
        found["queue"]["scheduled"],
        found["queue"]["failed"],
        found["queue"]["workers"],
    )
    assert 0 <= found["queue"]["oldest_waiting_age_sec"] < time.time() - started + 5
    assert 0 <= found["last_webhook_age_sec"] < 60
    assert 0 <= found["last_close_call_age_sec"] < 60
    assert (20, 0, 2.5, "PUT") == tuple(
        found["close_rate_limit"][k] for k in ("limit", "remaining", "reset_sec", "method")
    )
    assert {"total": 1, "rate_limited": 1, "retries": 0} == found["close_requests"]
    assert ({"applied": 1}, {"queued": 1}) == (found["events"], found["webhooks"])


def test_status_json_names_the_rules_in_force(run: Any) -> None:
    """The rules' count and digest are those the shipped files load to."""
    result = run("status", "--json")

    rules = json.loads(result.output)["rules"]
    assert (str(RULES_DIR), [], 12) == (rules["path"], rules["problems"], len(rules["digest"]))
    assert rules["count"] >= 1


def test_status_table_for_people(run: Any, redis_client: redis.Redis) -> None:
    """Without --json, one aligned line per fact."""
    busy(redis_client)

    lines = run("status").output.splitlines()

    assert lines[0].startswith("dealkeeper status at ")
    assert lines[1].startswith("queue             2 waiting (oldest ")
    assert lines[1].endswith(", 0 in progress, 0 scheduled, 0 failed")
    assert "Close rate limit  0 of 20 left, reset in 2.5s (PUT opportunity/o1/, " in lines[6]
    assert "Close requests    1 (1 rate limited, 0 retries)" == lines[7]
    assert "webhooks          queued 1" == lines[9]


def test_status_before_anything_happened(run: Any) -> None:
    """A fresh Redis: zeros, never, not seen yet."""
    lines = run("status").output.splitlines()

    assert "queue             0 waiting, 0 in progress, 0 scheduled, 0 failed" == lines[1]
    assert "last webhook      never" == lines[4]
    assert "Close rate limit  not seen yet" == lines[6]


def test_status_shows_rules_problems(run: Any, tmp_path: Path) -> None:
    """Broken rules are reported with their file:line:column problems."""
    (tmp_path / "bad.yaml").write_text("rules:\n  - name: x\n    thne: []\n")

    result = run("status", DEALKEEPER_RULES=str(tmp_path))

    assert "rules             INVALID in " in result.output
    assert f"{tmp_path}/bad.yaml:3:5: " in result.output


@pytest.fixture
def worker_here(redis_client: redis.Redis) -> Iterator[SimpleWorker]:
    worker = SimpleWorker(
        [make_queue(redis_client)], connection=redis_client, serializer=JSONSerializer
    )
    worker.register_birth()  # type: ignore[no-untyped-call]  # rq leaves it untyped
    yield worker
    worker.register_death()  # type: ignore[no-untyped-call]  # rq leaves it untyped


def test_status_check_worker_fails_without_a_live_worker(run: Any) -> None:
    """--check-worker exits 1 when no worker of this host is registered."""
    result = run("status", "--check-worker")

    assert 1 == result.exit_code
    assert f"no live dealkeeper worker on {socket.gethostname()}" in result.output


def test_status_check_worker_passes_with_one(run: Any, worker_here: SimpleWorker) -> None:
    """--check-worker exits 0 while a worker on this host is alive."""
    result = run("status", "--check-worker")

    assert (0, f"ok: 1 worker(s) alive on {socket.gethostname()}\n") == (
        result.exit_code,
        result.output,
    )


def test_status_without_redis_says_what_to_check(run: Any) -> None:
    """An unreachable Redis is one line naming REDIS_URL and REDIS_SSL_CERT_REQS, exit 1."""
    result = run("status", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    assert 1 == result.exit_code
    assert result.output.startswith("Error: Redis did not answer (")
    assert result.output.endswith("check REDIS_URL (and REDIS_SSL_CERT_REQS for Heroku Redis)\n")
