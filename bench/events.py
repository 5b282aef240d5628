"""Real Close events for benchmarks: made by the fake Close, queued as the web process does."""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import requests

from bench.common import KEY_HEX
from fakeclose import FakeClose
from service.adapters.queue import enqueue_event, make_queue
from service.adapters.stats import Stats
from service.core.events import event_from_dict
from service.intake.signatures import signed_headers


def won_events(fake: FakeClose, count: int) -> list[dict[str, Any]]:
    """`count` opportunities, each moved to Won by a person: one `updated` event each, which
    the one-field rules answer with one PUT (confidence 100)."""
    won = fake.status_id("Won")
    events = []
    for _ in range(count):
        oppo = fake.add_opportunity(confidence=60)
        event = fake.user_update(oppo["id"], {"status_id": won})
        assert event is not None
        events.append(event)
    return events


def enqueue_all(connection: redis.Redis, events: list[dict[str, Any]]) -> None:
    """Queue the events exactly as the web process does (dedupe record, pending list, job)."""
    queue, stats = make_queue(connection), Stats(connection)
    for raw in events:
        enqueue_event(event_from_dict(raw), queue=queue, stats=stats)


def post_webhook(session: requests.Session, url: str, event: dict[str, Any]) -> int:
    """Deliver one event as Close does: a signed POST of its envelope; returns the status."""
    body = json.dumps({"subscription_id": "whsub_bench", "event": event}).encode()
    headers = {"content-type": "application/json"}
    headers.update(signed_headers(body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())))
    return session.post(url, data=body, headers=headers, timeout=10).status_code
