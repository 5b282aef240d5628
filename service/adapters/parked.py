"""The parked store (RQ's failed registry), kept small: a trimmed reason, a cap on the count.

RQ keeps a failed job's whole traceback in a result stream beside the job's hash for the
failure TTL, 30 days, with no limit on how many: 7.3 KB an event, so a bad rule that parks
every event could fill Redis. A parked event keeps its job (the event, to retry
it) and why it failed: the frame that raised and the exception's text, which for Close's
refusals is Close's answer with its field errors. The whole traceback is in the worker's
log (`event_failed`). Past defaults.PARKED_MAX the oldest are dropped, counted and logged.
"""

from __future__ import annotations

import logging
import time
import zlib

from rq import Queue
from rq.job import Job

from service.adapters.queue import results_key
from service.adapters.stats import Stats
from service.config import defaults

log = logging.getLogger("dealkeeper.worker")
DROPPED_COUNTER = "jobs_parked_dropped_total"
TRIMMED_HEADER = "Traceback (last frame only; the whole one is in the worker's log):"
_FRAME = '  File "'
REASON_FIELD = "exc_info"


def compact_reason(exc_string: str, *, limit: int = defaults.PARKED_REASON_MAX_CHARS) -> str:
    """The traceback cut to the frame that raised and the exception's text, at most
    `limit` characters (the exception's last line, Close's answer, kept first)."""
    lines = exc_string.rstrip().splitlines()
    frames = [n for n, line in enumerate(lines) if line.startswith(_FRAME)]
    if not frames:
        return _cut(exc_string.strip(), limit)
    last = frames[-1]
    # The exception's text starts at the first line after that frame that is not indented
    # (the frame's own code line and Python's ^^^ markers are).
    text_at = next(
        (n for n in range(last + 1, len(lines)) if not lines[n].startswith(" ")), len(lines)
    )
    kept = "\n".join([TRIMMED_HEADER, lines[last], *lines[last + 1 : text_at], *lines[text_at:]])
    return _cut(kept, limit)


def _cut(text: str, limit: int) -> str:
    # Too long, the beginning goes: the end says what failed.
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1 :]


def store_compactly(queue: Queue, job: Job, reason: str, *, cap: int | None = None) -> int:
    """With `job` just parked, keep `reason` in its hash instead of RQ's result stream (a
    stream costs 4 KB of Redis even for one short entry), then drop the oldest parked
    events past the cap (default defaults.PARKED_MAX); returns how many were dropped."""
    limit = defaults.PARKED_MAX if cap is None else cap
    connection = queue.connection
    key = queue.failed_job_registry.key
    with connection.pipeline(transaction=False) as pipe:
        # Where and how RQ keeps a reason in a job's hash (Job.restore reads it back).
        pipe.hset(job.key, REASON_FIELD, zlib.compress(reason.encode()))
        pipe.delete(results_key(job.id))
        # RQ scores a parked job by its expiry in whole seconds, failure time + the same TTL
        # for every event: to the microsecond, the lowest score is the oldest.
        expiry = time.time() + (job.failure_ttl or defaults.JOB_FAILURE_TTL_SEC)
        pipe.zadd(key, {job.id: expiry}, xx=True)
        pipe.zcard(key)
        *_, count = pipe.execute()
    if count <= limit:
        return 0
    return _drop_oldest(queue, count - limit, limit=limit)


def _drop_oldest(queue: Queue, excess: int, *, limit: int) -> int:
    # ZPOPMIN hands each one to one worker only: two workers parking at once never drop
    # or count one twice.
    connection = queue.connection
    popped: list[tuple[bytes, float]] = connection.zpopmin(  # type: ignore[assignment]
        queue.failed_job_registry.key, excess
    )
    ids = [member.decode() for member, _score in popped]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.delete(Job.key_for(job_id), results_key(job_id))
        Stats(connection).incr(DROPPED_COUNTER, target=pipe, amount=len(ids))
        pipe.execute()
    log.warning(
        "parked_dropped",
        extra={
            "dropped": len(ids),
            "cap": limit,
            "advice": "the parked store is full: look at `dealkeeper failed list`, fix the "
            "cause, then `dealkeeper failed retry --all` or `dealkeeper failed purge`",
        },
    )
    return len(ids)


def reason_of(job: Job) -> str:
    """Why the job was parked: its kept reason, else (parked by an older version) the
    exception RQ kept in its result stream."""
    result = job.latest_result()
    if result is not None and result.exc_string:
        return str(result.exc_string)
    return str(job._exc_info or "")  # RQ's field, read from REASON_FIELD by Job.restore
