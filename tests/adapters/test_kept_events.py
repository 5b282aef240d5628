"""Events dealkeeper still holds in a real Redis (queued or parked jobs), by event id, for
`dealkeeper test --add-case`."""

from __future__ import annotations

import redis

from service.adapters.keptevents import kept_event
from service.adapters.queue import enqueue_event, job_id_for, make_queue
from tests.unit.rules_support import make_event


def test_a_queued_events_newest_version_is_found_and_no_other(redis_client: redis.Redis) -> None:
    """Close may consolidate an event (same id, later date_updated): the newest is taken.
    `ev_1` is not `ev_10`, whose job id starts with the same characters."""
    queue = make_queue(redis_client)
    for event_id, updated, value in [
        ("ev_1", "2026-05-04T12:00:00Z", 1),
        ("ev_1", "2026-05-04T12:00:05Z", 2),
        ("ev_10", "2026-05-04T12:00:09Z", 10),
    ]:
        event = make_event(id=event_id, date_updated=updated, data={"value": value})
        enqueue_event(event, queue=queue)

    found = kept_event(redis_client, "ev_1")

    assert found is not None
    assert ("ev_1", {"value": 2}) == (found["id"], found["data"])
    assert kept_event(redis_client, "ev_2") is None
    assert kept_event(redis_client, "ev_*") is None  # not an id (and no glob for SCAN)


def test_a_parked_event_is_found(redis_client: redis.Redis) -> None:
    """A parked job (RQ's failed registry, `dealkeeper failed`) keeps its event whole."""
    queue = make_queue(redis_client)
    event = make_event(id="ev_parked", data={"value": 7, "note": "kept"})
    enqueue_event(event, queue=queue)
    job = queue.fetch_job(job_id_for(event))
    assert job is not None
    queue.remove(job)
    queue.failed_job_registry.add(job, exc_string="Close answered 400")

    found = kept_event(redis_client, "ev_parked")

    assert found is not None and {"value": 7, "note": "kept"} == found["data"]
    assert 0 == len(queue) and [job.id] == queue.failed_job_registry.get_job_ids()
