"""Fault injection: every case ends with the final state of every opportunity and the exact
number of writes dealkeeper made (Close's own record of changes made with our key)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from rq import Worker

from fakeclose import FakeClose
from service.adapters.history import History
from service.core.events import parse_close_time
from tests.cluster import Cluster
from tests.conftest import REPO
from tests.faults.conftest import post_signed
from tests.waiting import wait_for

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)  # 22:30 on the 27th in New York
NY_DATE = "2026-11-27"


def won_deals(cluster: Cluster, count: int) -> list[str]:
    """`count` opportunities, each moved to Won by a person at WON_AT."""
    fake = cluster.fake
    fake.now = WON_AT
    ids = [fake.add_opportunity(confidence=60)["id"] for _ in range(count)]
    for oppo_id in ids:
        fake.user_update(oppo_id, {"status_id": fake.status_id("Won")})
    return ids


def assert_stamped(cluster: Cluster, ids: list[str], *, date_won: str = NY_DATE) -> None:
    states = [cluster.fake.opportunity(i) for i in ids]
    assert [(date_won, 100)] * len(ids) == [(s["date_won"], s["confidence"]) for s in states]


def writes_per_opportunity(cluster: Cluster) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in cluster.our_writes():
        counts[event["object_id"]] = counts.get(event["object_id"], 0) + 1
    return counts


def test_faults_worker_killed_mid_request_applies_the_event_once(cluster: Cluster) -> None:
    """SIGKILL the worker while Close holds its PUT: the job is found abandoned, retried by
    the other worker, and the deal ends up stamped with exactly one write."""
    cluster.env["CLOSE_READ_TIMEOUT"] = "10"
    cluster.start(workers=2)
    cluster.fake.delay_next(1, 3.0, method="PUT")

    (oppo_id,) = won_deals(cluster, 1)
    wait_for(lambda: cluster.fake.requests_matching("PUT"), what="the PUT to reach Close")
    busy = wait_for(lambda: _busy_worker(cluster), what="the worker holding the job")
    busy.send_signal(signal.SIGKILL)
    cluster.settle(timeout=90)

    assert_stamped(cluster, [oppo_id])
    assert {oppo_id: 1} == writes_per_opportunity(cluster)


def _busy_worker(cluster: Cluster) -> subprocess.Popen[bytes] | None:
    for worker in Worker.all(connection=cluster.redis):
        if worker.get_current_job_id():
            index = int(worker.name.split("-")[0].removeprefix("w"))
            return cluster.workers[index]
    return None


def test_faults_sigterm_lets_the_job_in_hand_finish(cluster: Cluster) -> None:
    """SIGTERM mid-job: the worker finishes the write, then exits 0 well within 30 s."""
    cluster.env["CLOSE_READ_TIMEOUT"] = "10"
    cluster.start(workers=1)
    cluster.fake.delay_next(1, 2.0, method="PUT")

    (oppo_id,) = won_deals(cluster, 1)
    wait_for(lambda: cluster.fake.requests_matching("PUT"), what="the PUT to reach Close")
    started = time.monotonic()
    cluster.workers[0].send_signal(signal.SIGTERM)
    code = cluster.workers[0].wait(timeout=30)

    assert (0, True) == (code, time.monotonic() - started < 30)
    assert_stamped(cluster, [oppo_id])
    assert {oppo_id: 1} == writes_per_opportunity(cluster)


def test_faults_redis_restart_during_a_stream_of_webhooks(cluster: Cluster) -> None:
    """Redis goes away mid-stream: the web answers 503 meanwhile (Close delivers again),
    recovers alone, workers reconnect, and every event is applied exactly once."""
    cluster.start(workers=2)
    first = won_deals(cluster, 5)
    cluster.settle()

    cluster.redis_server.stop()
    during = won_deals(cluster, 5)
    wait_for(lambda: _readyz(cluster) == 503, what="/readyz to report Redis gone")
    probe = post_signed(cluster, _probe_event())
    cluster.redis_server.start()
    after = won_deals(cluster, 5)
    cluster.settle(timeout=120)

    every = first + during + after
    assert 503 == probe
    assert_stamped(cluster, every)
    assert dict.fromkeys(every, 1) == writes_per_opportunity(cluster)


def _readyz(cluster: Cluster) -> int:
    try:
        return requests.get(f"{cluster.web_url}/readyz", timeout=5).status_code
    except requests.RequestException:
        return 0


def _probe_event() -> bytes:
    event = {
        "id": "ev_probe",
        "object_type": "opportunity",
        "object_id": "oppo_probe",
        "action": "updated",
        "date_created": WON_AT.isoformat(),
        "data": {"id": "oppo_probe"},
    }
    return json.dumps({"event": event}).encode()


def test_faults_bursts_of_5xx_are_retried_to_completion(cluster: Cluster) -> None:
    """Close failing reads and writes in bursts: every deal is stamped, once."""
    cluster.start(workers=3)
    cluster.fake.fail_next(10, status=503, method="PUT")
    cluster.fake.fail_next(6, status=502, method="GET", path_prefix="opportunity/")
    cluster.fake.fail_next(4, status=504, method="PUT")

    ids = won_deals(cluster, 12)
    cluster.settle(timeout=120)

    assert_stamped(cluster, ids)
    assert dict.fromkeys(ids, 1) == writes_per_opportunity(cluster)


def test_faults_429_storm_across_three_workers(cluster: Cluster) -> None:
    """Close allows 5 writes a second and answers a burst of PUTs with 429 while three
    workers push: they pause together, every refused PUT is sent again, and every deal is
    stamped once (a race for Close's last slot may add a real 429 to the injected ones)."""
    cluster.env["CLOSE_RATE_LIMIT"] = "100"  # our own pace must not hide Close's limit
    cluster.start(workers=3)
    cluster.fake.set_rate_limit(5, window_sec=1.0, group="write")
    storm = {"ratelimit": "limit=5, remaining=0, reset=1.5", "retry-after": "2"}
    cluster.fake.fail_next(12, status=429, method="PUT", headers=storm)

    ids = won_deals(cluster, 25)
    cluster.settle(timeout=120)

    assert_stamped(cluster, ids)
    assert dict.fromkeys(ids, 1) == writes_per_opportunity(cluster)
    assert len(cluster.fake.requests_matching("PUT")) >= 25 + 12


def test_faults_read_timeouts_do_not_double_write(cluster: Cluster) -> None:
    """Close answering too slowly: the PUT is sent again, and still one change lands."""
    cluster.start(workers=2)
    cluster.fake.delay_next(3, 1.5, method="PUT")

    ids = won_deals(cluster, 5)
    cluster.settle(timeout=90)

    assert_stamped(cluster, ids)
    assert dict.fromkeys(ids, 1) == writes_per_opportunity(cluster)


def test_faults_duplicate_and_out_of_order_deliveries(cluster: Cluster) -> None:
    """One deal's three events delivered newest first and twice over, before any worker
    runs: they are applied oldest first, each once, and the deal ends as the rules say."""
    segment = cluster.fake.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["Enterprise"]
    )
    cluster.start_web()
    fake = cluster.fake
    oppo = fake.add_opportunity(confidence=60, value=1000)
    steps: list[dict[str, Any]] = [
        {"status_id": fake.status_id("Won")},
        {"confidence": 50},
        {"value": 2_000_000},
    ]
    events = []
    for minute, change in enumerate(steps):
        fake.now = WON_AT + timedelta(minutes=minute)
        events.append(fake.user_update(oppo["id"], change))
    a, b, c = (json.dumps({"subscription_id": "whsub_x", "event": e}).encode() for e in events)

    answers = [post_signed(cluster, body) for body in (c, a, c, b, a)]
    for _ in range(3):
        cluster.start_worker()
    cluster.settle()

    assert [202, 202, 200, 202, 200] == answers
    state = fake.opportunity(oppo["id"])
    assert (NY_DATE, 100, ["Enterprise"]) == (
        state["date_won"],
        state["confidence"],
        state[f"custom.{segment}"],
    )
    assert [
        {"date_won": NY_DATE},
        {"confidence": 100},
        {f"custom.{segment}.add": "Enterprise"},
    ] == [_changes(e) for e in cluster.our_writes()]


def _changes(event: dict[str, Any]) -> dict[str, Any]:
    """What one of our writes changed, written as the update that made it."""
    changed = [k for k in event["changed_fields"] if k != "date_updated"]
    result: dict[str, Any] = {}
    for key in changed:
        if key.startswith("custom."):
            result[f"{key}.add"] = "Enterprise"
        else:
            result[key] = event["data"].get(key)
    return result


def test_faults_missed_webhook_is_recovered_by_catch_up(cluster: Cluster) -> None:
    """An event Close never delivered is read back from the event log and applied; the one
    that was delivered is recognised and not applied twice."""
    cluster.start_web()
    cluster.start_worker()
    fake = cluster.fake
    missed, delivered = (fake.add_opportunity(confidence=60)["id"] for _ in range(2))
    won = [fake.user_update(missed, {"status_id": fake.status_id("Won")})]
    cluster.deliver()
    won.append(fake.user_update(delivered, {"status_id": fake.status_id("Won")}))
    cluster.settle()

    result = subprocess.run(
        [sys.executable, "-m", "service", "catch-up", "--since", "1h"],
        env=cluster.env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    cluster.settle()

    # The log holds both people's changes and the echo of our write to `delivered`.
    assert "read 3 events" in result.stdout, result.stdout + result.stderr
    assert "queued 1, already queued before 2" in result.stdout
    # The New York date of each change, from Close's own time of it: the test may run
    # across midnight in New York.
    dates = [_new_york_date(event) for event in won]
    assert dates == [cluster.fake.opportunity(i)["date_won"] for i in (missed, delivered)]
    assert [100, 100] == [cluster.fake.opportunity(i)["confidence"] for i in (missed, delivered)]
    assert {missed: 1, delivered: 1} == writes_per_opportunity(cluster)


def _new_york_date(event: dict[str, Any] | None) -> str:
    assert event is not None
    moment = parse_close_time(event["date_created"], what="date_created")
    return moment.astimezone(ZoneInfo("America/New_York")).date().isoformat()


@pytest.fixture(autouse=True)
def _fake_clock_reset(cluster: Cluster) -> None:
    cluster.fake.now = None
    assert FakeClose.DEFAULT_API_KEY_ID


def test_faults_events_of_each_opportunity_run_oldest_first_under_load(cluster: Cluster) -> None:
    """Sixty events of ten deals, delivered newest first, then three workers at once: each
    deal's events are processed in the order Close created them (per its history)."""
    cluster.start_web()
    fake = cluster.fake
    won = fake.status_id("Won")
    deals = [fake.add_opportunity(status_id=won, confidence=100)["id"] for _ in range(10)]
    bodies = []
    for minute in range(6):
        fake.now = WON_AT + timedelta(minutes=minute)
        for deal in deals:
            event = fake.user_update(deal, {"confidence": 50 - minute})
            bodies.append(json.dumps({"event": event}).encode())

    answers = [post_signed(cluster, body) for body in reversed(bodies)]
    for _ in range(3):
        cluster.start_worker()
    cluster.settle(timeout=120)

    assert [202] * 60 == answers
    history = History(cluster.redis)
    for deal in deals:
        entries = sorted(history.for_opportunity(deal), key=lambda e: e.processed_at)
        times = [e.event_time for e in entries]
        assert sorted(times) == times
        assert 6 == len(entries)
    assert all(fake.opportunity(d)["confidence"] == 100 for d in deals)
