"""The whole path, with every part real: Close (our fake) signs and delivers webhooks to
gunicorn, a `dealkeeper worker` process evaluates the shipped rules and writes back to Close.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from rq import Worker

from fakeclose import FakeClose
from service.adapters.embedded import free_port
from service.adapters.queue import make_queue
from service.intake import signatures
from tests.cluster import KEY_HEX
from tests.conftest import REPO, RULES_DIR
from tests.waiting import wait_for

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)  # 22:30 on the 27th in New York


@dataclass
class Stack:
    """The running processes and the fake Close they talk to."""

    fake: FakeClose
    redis: redis.Redis
    web_url: str
    logs: Path

    def snapshot(self) -> tuple[int, int, tuple[Any, ...]] | None:
        """Events, deliveries and job states, when every event is delivered and every job
        has ended; None while anything is still on its way."""
        events, deliveries = len(self.fake.events), list(self.fake.deliveries)
        states = tuple(
            sorted(self.redis.hget(k, "status") or b"" for k in self.redis.keys("rq:job:*"))
        )
        done = all(state in (b"finished", b"failed") for state in states)
        if len(deliveries) != events or not done:
            return None
        return events, len(deliveries), states

    def settle(self) -> None:
        """Wait until nothing moves: a finished job may still cause an echo event, so the
        same quiet snapshot must be seen twice."""
        previous: list[object] = [None]

        def quiet() -> bool:
            now = self.snapshot()
            stable = now is not None and now == previous[0]
            previous[0] = now
            return stable

        wait_for(quiet, what="deliveries and jobs to settle")

    def puts(self) -> list[tuple[str, Any, str | None]]:
        return [
            (r.path, r.json, r.headers.get("x-tz-offset"))
            for r in self.fake.requests_matching("PUT")
        ]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture
def stack(redis_url: str, tmp_path: Path, fake_close: FakeClose) -> Iterator[Stack]:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake_close.url,
        "CLOSE_WEBHOOK_SECRET": KEY_HEX,
        "DEALKEEPER_RULES": str(RULES_DIR),
        "LOG_LEVEL": "INFO",
        "DEALKEEPER_CATCHUP_INTERVAL": "0",  # tests/faults covers catch-up
    }
    web = start(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "service.web:create_app()"],
        env, tmp_path / "web.log",
    )  # fmt: skip
    worker = start([sys.executable, "-m", "service", "worker"], env, tmp_path / "worker.log")
    web_url = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(redis_url)
    try:
        wait_for(lambda: _ready(web_url), what="gunicorn to answer /readyz")
        wait_for(lambda: Worker.count(connection=client) >= 1, what="the worker to register")
        fake_close.deliver_webhooks_to(f"{web_url}/webhooks/close", signature_key_hex=KEY_HEX)
        yield Stack(fake_close, client, web_url, tmp_path)
    finally:
        codes = (stop(web), stop(worker))
        client.close()
        for name in ("web.log", "worker.log"):
            print(f"--- {name}\n{(tmp_path / name).read_text()[-4000:]}")
        assert (0, 0) == codes


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def segment(fake_close: FakeClose) -> str:
    return fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )


def test_whole_path_deal_won_late_evening_in_new_york(stack: Stack, segment: str) -> None:
    """Won at 22:30 New York time: one PUT stamps the 27th and full confidence; the echo of
    our own write changes nothing."""
    fake = stack.fake
    oppo = fake.add_opportunity(confidence=60)
    fake.now = WON_AT

    fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
    stack.settle()

    assert [
        (f"opportunity/{oppo['id']}/", {"date_won": "2026-11-27", "confidence": 100}, "-5")
    ] == stack.puts()
    state = fake.opportunity(oppo["id"])
    assert ("Won", "2026-11-27", 100) == (
        state["status_label"],
        state["date_won"],
        state["confidence"],
    )
    assert {FakeClose.DEFAULT_API_KEY_ID.encode()} == stack.redis.smembers("dk:own:api_key_ids")


def test_whole_path_big_deal_is_tagged_once(stack: Stack, segment: str) -> None:
    """A deal raised over $10,000 gets Enterprise added to its Segment, once."""
    fake = stack.fake
    oppo = fake.add_opportunity(value=500000, **{f"custom.{segment}": ["SMB"]})

    fake.user_update(oppo["id"], {"value": 1500000})
    stack.settle()
    fake.user_update(oppo["id"], {"value": 1600000})
    stack.settle()

    assert [(f"opportunity/{oppo['id']}/", {f"custom.{segment}.add": "Enterprise"}, "-5")] == (
        stack.puts()
    )
    assert ["SMB", "Enterprise"] == fake.opportunity(oppo["id"])[f"custom.{segment}"]


@pytest.mark.parametrize("signed_hours_ago", [0, 70])
def test_whole_path_redelivered_event_is_applied_once(
    stack: Stack, segment: str, signed_hours_ago: int
) -> None:
    """Close delivering the same event again gets 200 'duplicate' and causes no second write,
    also when the retry carries a signature from 70 hours ago (the long window is safe)."""
    fake = stack.fake
    oppo = fake.add_opportunity(confidence=60)
    fake.now = WON_AT
    event = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
    stack.settle()
    body = json.dumps({"subscription_id": "whsub_fake", "event": event}).encode()

    again = requests.post(
        f"{stack.web_url}/webhooks/close",
        data=body,
        headers=signatures.signed_headers(
            body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time()) - signed_hours_ago * 3600
        ),
        timeout=5,
    )
    stack.settle()

    assert (200, "duplicate") == (again.status_code, again.json()["status"])
    assert 1 == len(stack.puts())


def test_whole_path_wrongly_signed_webhook_never_reaches_a_worker(stack: Stack) -> None:
    """gunicorn answers 401 to a forged delivery and nothing is queued."""
    body = json.dumps({"event": {"id": "ev_x", "object_type": "opportunity"}}).encode()

    answer = requests.post(
        f"{stack.web_url}/webhooks/close",
        data=body,
        headers=signatures.signed_headers(body, key=b"\x00" * 32, timestamp=int(time.time())),
        timeout=5,
    )

    assert 401 == answer.status_code
    assert 0 == make_queue(stack.redis).count
    assert [] == stack.puts()
