"""Events of one opportunity in the order Close created them.

Every queued event is also listed in a per-opportunity sorted set, scored by its
`date_created`. A job looks there before it starts: while an older event of the same
opportunity is queued or being processed, it waits its turn (service/core/turns.py decides).
Events whose jobs finished, failed or vanished are struck off lazily.
"""

from __future__ import annotations

from typing import Any

import redis

from service.core.events import Event
from service.core.turns import others, sort_older

PENDING_PREFIX = "dk:pending:"


def score(event: Event) -> int:
    """Milliseconds since the epoch of the moment the change happened."""
    return int(event.date_created.timestamp() * 1000)


def pending_key(event: Event) -> str:
    """The sorted set listing the pending events of the event's opportunity. The enqueue
    script (service/adapters/queue.py) adds each event to it, scored by `score`, in the
    same call that queues the job, and keeps it for DEDUPE_TTL_SEC."""
    return PENDING_PREFIX + event.object_id


def remove_pending(target: Any, event: Event, *, job_id: str) -> None:
    """Strike the event off its opportunity's list (on a connection or a pipeline)."""
    target.zrem(pending_key(event), job_id)


def read_older_on(pipe: Any, event: Event) -> None:
    """Queue the read of the events listed before this one on `pipe` (one reply, for
    `any_older`): the usual answer, none, then costs no round trip of its own."""
    pipe.zrangebyscore(*_listed_before(event))


def any_older(reply: Any, *, job_id: str) -> bool:
    """Whether `read_older_on` found other events listed before this one (True as well
    when Redis refused the read: `predecessors` then asks again)."""
    if not isinstance(reply, list):
        return True
    return bool(others(reply, job_id))


def predecessors(connection: redis.Redis, event: Event, *, job_id: str) -> dict[str, bytes]:
    """Older events of the same opportunity still queued or running: job id -> status."""
    key, low, high = _listed_before(event)
    found: list[bytes] = connection.zrangebyscore(key, low, high)  # type: ignore[assignment]
    older = others(found, job_id)
    if not older:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for member in older:
            pipe.hget(f"rq:job:{member}", "status")
        statuses = pipe.execute()
    sorted_out = sort_older(dict(zip(older, statuses, strict=True)))
    if sorted_out.ended:
        connection.zrem(key, *sorted_out.ended)
    return sorted_out.waiting


def _listed_before(event: Event) -> tuple[str, str, str]:
    """ZRANGEBYSCORE's arguments for the events of the opportunity listed before this one."""
    return pending_key(event), "-inf", f"({score(event)}"


def pending_statuses(connection: redis.Redis, opportunity_id: str) -> dict[str, str]:
    """The opportunity's listed events now: job id -> its job's status (queued, started,
    scheduled, failed, ...), oldest first, in two round trips; jobs gone are left out.
    Events that ended are struck off lazily, so a parked one may no longer be listed."""
    listed: list[bytes] = connection.zrange(PENDING_PREFIX + opportunity_id, 0, -1)  # type: ignore[assignment]
    if not listed:
        return {}
    ids = [m.decode() if isinstance(m, bytes) else str(m) for m in listed]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(f"rq:job:{job_id}", "status")
        statuses = pipe.execute()
    return {
        job_id: status.decode() if isinstance(status, bytes) else str(status)
        for job_id, status in zip(ids, statuses, strict=True)
        if status is not None
    }
