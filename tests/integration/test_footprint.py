"""What events leave in Redis once done: real Redis (MEMORY USAGE), the real worker class
in this process, the fake Close."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue

from service.adapters.footprint import bytes_by_kind
from service.adapters.queue import enqueue_event
from service.events import event_from_dict
from service.fakeclose import FakeClose
from service.settings import Settings
from service.worker import make_worker

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
DEALS = 8
UPDATES_PER_DEAL = 4  # after the move to won: value edits no rule acts on
KIND_OF_EVENT = ("jobs", "own writes", "loop guard", "ordering", "locks")


@pytest.fixture
def work(settings: Settings) -> Callable[[], None]:
    def run() -> None:
        make_worker(settings).work(burst=True, with_scheduler=False)

    return run


def deal_events(fake: FakeClose) -> list[dict[str, Any]]:
    """One deal moved to won (a PUT), then edited UPDATES_PER_DEAL times, a minute apart."""
    oppo = fake.add_opportunity(confidence=60, value=1000)
    fake.now = WON_AT
    events = [fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})]
    for n in range(UPDATES_PER_DEAL):
        fake.now = WON_AT + timedelta(minutes=n + 1)
        events.append(fake.user_update(oppo["id"], {"value": 2000 + n}))
    assert None not in events
    return events  # type: ignore[return-value]


def queue_raw(raw: dict[str, Any], queue: Queue) -> None:
    enqueue_event(event_from_dict(raw), queue=queue)


def test_a_finished_event_leaves_its_dedupe_record_history_and_under_1kb_more(
    fake_close: FakeClose, queue: Queue, work: Callable[[], None], redis_client: redis.Redis
) -> None:
    """Events done (some sent back first to wait for an older one: queued newest first),
    nothing of their jobs stays, and what else they leave (own-write receipts, loop-guard
    counts) is under 1 KB an event. RQ kept each job and its result an hour: 6.8 KB."""
    events = [e for _ in range(DEALS) for e in deal_events(fake_close)]
    for raw in reversed(events):  # the newest of a deal first: it must wait its turn
        queue_raw(raw, queue)

    work()

    kinds = bytes_by_kind(redis_client)
    per_event = {kind: kinds.get(kind, 0) / len(events) for kind in kinds}
    print("bytes per finished event:", {k: round(v) for k, v in sorted(per_event.items())})
    assert 0 == queue.count + queue.scheduled_job_registry.count
    assert sum(per_event.get(kind, 0) for kind in KIND_OF_EVENT) <= 1024
    assert [] == redis_client.keys("rq:job:*") + redis_client.keys("rq:results:*")
    assert per_event["dedupe"] + per_event["history"] <= 1024
