"""Events of one opportunity in the order Close created them.

Every queued event is also listed in a per-opportunity sorted set, scored by its
`date_created`. A job looks there before it starts: while an older event of the same
opportunity is queued or being processed, it waits its turn. Events whose jobs finished,
failed or vanished are struck off lazily. A job waiting on a retry (scheduled) does not
hold the others back: the stale-write check (service/reconcile.py) keeps that safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from service.events import Event

PENDING_PREFIX = "dk:pending:"
_WAITING_FOR = (b"queued", b"started")
_ENDED = (None, b"finished", b"failed", b"canceled", b"stopped")


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
    return bool(_others(reply, job_id))


def predecessors(connection: redis.Redis, event: Event, *, job_id: str) -> dict[str, bytes]:
    """Older events of the same opportunity still queued or running: job id -> status."""
    key, low, high = _listed_before(event)
    found: list[bytes] = connection.zrangebyscore(key, low, high)  # type: ignore[assignment]
    older = _others(found, job_id)
    if not older:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for member in older:
            pipe.hget(f"rq:job:{member}", "status")
        statuses = pipe.execute()
    ended = [m for m, s in zip(older, statuses, strict=True) if s in _ENDED]
    if ended:
        connection.zrem(key, *ended)
    return {m: s for m, s in zip(older, statuses, strict=True) if s in _WAITING_FOR}


def _listed_before(event: Event) -> tuple[str, str, str]:
    """ZRANGEBYSCORE's arguments for the events of the opportunity listed before this one."""
    return pending_key(event), "-inf", f"({score(event)}"


def _others(members: Iterable[bytes | str], job_id: str) -> list[str]:
    """The job ids among `members` other than this job's own."""
    return [m for m in map(_text, members) if m != job_id]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
