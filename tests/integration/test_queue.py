"""The enqueue script writes each event's job itself, from a template of what RQ writes: the
job must be the very job RQ's own enqueue_call would have queued."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.utils import utcparse

from service.adapters import queue as queueing
from service.adapters.ordering import PENDING_PREFIX
from service.adapters.stats import LAST_KEY, STATS_KEY, Stats, webhook_counter_field
from service.config import defaults
from service.core.events import Event

MOMENT = datetime(2026, 11, 28, 3, 30, 5, 123456, tzinfo=UTC)
# Set by RQ and by the script at the moment of queueing: equal in form, not in value.
TIMESTAMPS = {b"created_at", b"enqueued_at"}


def event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "id": "ev_1",
        "object_type": "opportunity",
        "action": "updated",
        "object_id": "oppo_1",
        "date_created": MOMENT,
        "date_updated": MOMENT,
        "data": {"id": "oppo_1", "confidence": 60, "note": "ü" * 40},
        "previous_data": {"confidence": 50},
        "changed_fields": ("confidence",),
        "lead_id": "lead_1",
        "subscription_id": "whsub_1",
    }
    return Event(**{**fields, **changes})


def rq_job_hash(
    queue: Queue, redis_client: redis.Redis, item: Event, timeout: int
) -> dict[bytes, bytes]:
    """The hash RQ's own enqueue_call writes for the event."""
    with redis_client.pipeline() as pipe:
        pipe.multi()
        queueing._enqueue_on(pipe, item, queue=queue, job_id="by_rq", timeout=timeout)
        pipe.execute()
    written: dict[bytes, bytes] = redis_client.hgetall(Job.key_for("by_rq"))  # type: ignore[assignment]
    redis_client.delete(Job.key_for("by_rq"))
    redis_client.lrem(queue.key, 0, "by_rq")
    return written


@pytest.mark.parametrize("timeout", [defaults.JOB_TIMEOUT_SEC, 17])
@pytest.mark.parametrize("item", [event(), event(action="swept", sweep="stale deals")])
def test_queue_job_hash_is_the_one_rq_writes(
    queue: Queue, redis_client: redis.Redis, item: Event, timeout: int
) -> None:
    """Field for field what RQ writes (the two timestamps: in RQ's format)."""
    expected = rq_job_hash(queue, redis_client, item, timeout)

    queued = queueing.enqueue_event(item, queue=queue, job_timeout_sec=timeout)
    written: dict[bytes, bytes] = redis_client.hgetall(Job.key_for(queued.job_id))  # type: ignore[assignment]

    assert {k: v for k, v in expected.items() if k not in TIMESTAMPS} == {
        k: v for k, v in written.items() if k not in TIMESTAMPS
    }
    assert expected.keys() == written.keys()
    for name in TIMESTAMPS:
        stamp = written[name].decode()
        assert utcparse(stamp).tzinfo == UTC  # RQ reads it back as UTC
    assert zlib.decompress(written[b"data"]) == zlib.decompress(expected[b"data"])


def test_queue_job_runs_as_rq_reads_it(queue: Queue, redis_client: redis.Redis) -> None:
    """RQ reads the job back with the function, argument and settings it was queued with,
    in the queue, listed as pending for its opportunity."""
    item = event()

    queued = queueing.enqueue_event(item, queue=queue, job_timeout_sec=42)
    job = Job.fetch(queued.job_id, connection=redis_client, serializer=queue.serializer)

    assert (queueing.JOB_FUNCTION, [item.to_dict()], {}) == (job.func_name, job.args, job.kwargs)
    assert (42, defaults.JOB_RESULT_TTL_SEC, defaults.JOB_FAILURE_TTL_SEC) == (
        job.timeout,
        job.result_ttl,
        job.failure_ttl,
    )
    assert len(defaults.JOB_RETRY_INTERVALS_SEC) == job.retries_left
    assert list(defaults.JOB_RETRY_INTERVALS_SEC) == job.retry_intervals
    assert ("queued", defaults.QUEUE_NAME, [queued.job_id]) == (
        job.get_status(),
        job.origin,
        queue.job_ids,
    )
    assert "opportunity.updated oppo_1" == job.description
    assert not job._dependency_ids and not job.meta
    assert {queue.key.encode()} == redis_client.smembers(queue.redis_queues_keys)
    pending = redis_client.zrange(PENDING_PREFIX + "oppo_1", 0, -1, withscores=True)
    assert [(queued.job_id.encode(), MOMENT.timestamp() * 1000 // 1)] == pending
    assert 0 < redis_client.ttl(PENDING_PREFIX + "oppo_1") <= defaults.DEDUPE_TTL_SEC


def test_queue_webhook_is_counted_with_its_job(queue: Queue, redis_client: redis.Redis) -> None:
    """With stats, the same call counts the webhook and stamps when it came."""
    queueing.enqueue_event(event(), queue=queue, stats=Stats(redis_client, clock=lambda: 1234.5))

    assert b"1" == redis_client.hget(STATS_KEY, webhook_counter_field("queued"))
    assert b"1234.5" == redis_client.hget(LAST_KEY, "last_webhook_at")


def test_queue_duplicate_writes_nothing(queue: Queue, redis_client: redis.Redis) -> None:
    """A second delivery of the same event changes nothing in Redis."""
    stats = Stats(redis_client)
    first = queueing.enqueue_event(event(), queue=queue, stats=stats)
    before = {key: redis_client.dump(key) for key in redis_client.keys("*")}

    again = queueing.enqueue_event(event(), queue=queue, stats=stats)

    assert (False, True, first.job_id) == (first.duplicate, again.duplicate, again.job_id)
    assert before == {key: redis_client.dump(key) for key in redis_client.keys("*")}


def test_queue_template_fields_reach_redis_byte_for_byte(redis_client: redis.Redis) -> None:
    """The constant fields are written into the script as Lua strings: every byte survives."""
    value = bytes(range(256)) + b'"\\0012'

    assert value == redis_client.eval(f"return {queueing._lua_string(value)}", 0)
