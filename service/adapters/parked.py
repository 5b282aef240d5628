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
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from service.adapters.loopguard import PREFIX as LOOP_PREFIX
from service.adapters.queue import opportunity_of_description, results_key
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


# -- what `dealkeeper failed` and the console's parked page both show and do ----------------

# The job's meta key where a job keeps, as it fails, what Close refused and which rules asked
# for it (service/processing/jobs.py): the reason text alone does not name the rules.
REFUSAL_META = "close_refusal"


@dataclass(frozen=True)
class Parked:
    """One parked event, as the command and the console show it."""

    job_id: str
    event: str
    opportunity: str
    failed_at: str
    reason: str  # the exception's line: for Close's refusals, Close's own answer


@dataclass(frozen=True)
class ParkedDetail:
    """A parked event with what the console shows beside the line: the whole kept reason,
    the event, and (when the job recorded it) the rules whose update Close refused and its
    field errors."""

    parked: Parked
    full_reason: str
    event: dict[str, Any]
    retries_left: int | None
    refusal: dict[str, Any]

    @property
    def rules(self) -> list[str]:
        return [str(r) for r in self.refusal.get("rules") or []]

    @property
    def field_errors(self) -> dict[str, str]:
        found = self.refusal.get("field_errors") or {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def parked_job_list(queue: Queue) -> list[Job]:
    """Every parked job (at most defaults.PARKED_MAX), in one round trip after the ids."""
    ids = queue.failed_job_registry.get_job_ids()
    jobs = Job.fetch_many(ids, connection=queue.connection, serializer=JSONSerializer)
    return [job for job in jobs if job is not None]


def parked_jobs(queue: Queue) -> list[Parked]:
    """Every job in the failed registry, newest first."""
    return sorted(
        (describe(job) for job in parked_job_list(queue)),
        key=lambda p: p.failed_at,
        reverse=True,
    )


def newest_parked(
    queue: Queue, *, start: int = 0, count: int = 100
) -> tuple[list[ParkedDetail], int]:
    """A page of parked events, newest first, and how many are parked: a page reads its own
    jobs only. RQ scores a parked job by its expiry, its failure time plus the same TTL
    for every event (store_compactly), so the highest scores are the newest."""
    key = queue.failed_job_registry.key
    with queue.connection.pipeline(transaction=False) as pipe:
        pipe.zrevrange(key, start, start + count - 1)
        pipe.zcard(key)
        members, total = pipe.execute()
    ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
    return _details(queue.connection, ids), int(total)


def parked_of(queue: Queue, opportunity_id: str) -> tuple[list[ParkedDetail], int]:
    """One deal's parked events, newest first, and how many are parked in all. Each job's
    description names its deal: one pipelined HGET a parked job, then only the deal's jobs
    are read whole."""
    connection = queue.connection
    ids = queue.failed_job_registry.get_job_ids()
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(Job.key_for(job_id), "description")
        descriptions = pipe.execute()
    mine = [
        job_id
        for job_id, description in zip(ids, descriptions, strict=True)
        if opportunity_of_description(description) == opportunity_id
    ]
    found = _details(connection, mine)
    return sorted(found, key=lambda d: d.parked.failed_at, reverse=True), len(ids)


def describe(job: Job, *, reason: str | None = None) -> Parked:
    """The job's summary line; `reason` when the caller has read it already (a read costs a
    round trip to Redis)."""
    event = event_of(job)
    ended = job.ended_at.replace(tzinfo=UTC) if job.ended_at else None
    return Parked(
        job_id=job.id,
        event=f"{event.get('object_type', '?')}.{event.get('action', '?')} {event.get('id', '')}",
        opportunity=str(event.get("object_id", "")),
        failed_at=ended.isoformat(timespec="seconds") if ended else "",
        reason=last_line(reason_of(job) if reason is None else reason),
    )


def _details(connection: redis.Redis, ids: list[str]) -> list[ParkedDetail]:
    """The jobs' details in three round trips however many: asking each job for RQ's result
    stream, which store_compactly deleted, would cost one per job (26 ms for a page of 50)."""
    jobs = [j for j in Job.fetch_many(ids, connection=connection, serializer=JSONSerializer) if j]
    with connection.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.exists(results_key(job.id))
        streams = pipe.execute()
    return [
        detail(job, reason=None if stream else str(job._exc_info or ""))
        for job, stream in zip(jobs, streams, strict=True)
    ]


def detail(job: Job, *, reason: str | None = None) -> ParkedDetail:
    """One parked job whole; `reason` when the caller has read it already."""
    refusal = job.meta.get(REFUSAL_META) if isinstance(job.meta, dict) else None
    reason = reason_of(job) if reason is None else reason
    return ParkedDetail(
        parked=describe(job, reason=reason),
        full_reason=reason.rstrip(),
        event=event_of(job),
        retries_left=job.retries_left,
        refusal=refusal if isinstance(refusal, dict) else {},
    )


def event_of(job: Job) -> dict[str, Any]:
    """The event a job carries (its first argument), or {} for a job that carries none."""
    return job.args[0] if job.args and isinstance(job.args[0], dict) else {}


def last_line(text: str) -> str:
    """The exception line of a traceback: for Close errors, Close's own answer."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no reason recorded)"


def requeue(queue: Queue, job_id: str) -> bool:
    """Back on the queue with a full set of retries, its loop counters cleared; False when
    `job_id` is not parked."""
    registry = queue.failed_job_registry
    if job_id not in registry.get_job_ids():
        return False
    try:
        job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    except NoSuchJobError:
        registry.remove(job_id)
        return False
    job.retries_left = len(defaults.JOB_RETRY_INTERVALS_SEC)
    job.save()
    _clear_loop_counters(queue.connection, job)
    registry.requeue(job_id)
    return True


@dataclass(frozen=True)
class Requeued:
    """What a retry did: the ids put back and those that were not parked (any more)."""

    requeued: list[str]
    missing: list[str]


def requeue_many(queue: Queue, job_ids: list[str] | None = None) -> Requeued:
    """Requeue `job_ids`, or every parked event when None."""
    targets = queue.failed_job_registry.get_job_ids() if job_ids is None else list(job_ids)
    done: list[str] = []
    missing: list[str] = []
    for job_id in targets:
        (done if requeue(queue, job_id) else missing).append(job_id)
    return Requeued(done, missing)


def _clear_loop_counters(connection: redis.Redis, job: Job) -> None:
    # A loop-suspected event retried must get its writes back. The SCAN matches one
    # opportunity's few counters; a retry is a person's click, not a hot path.
    opportunity = event_of(job).get("object_id", "")
    keys = list(connection.scan_iter(f"{LOOP_PREFIX}{opportunity}:*"))
    if keys:
        connection.delete(*keys)


def purge_parked(queue: Queue, job_ids: list[str] | None = None) -> int:
    """Delete parked events for good (`job_ids`, or all when None); how many were parked."""
    parked = queue.failed_job_registry.get_job_ids()
    targets = parked if job_ids is None else [j for j in job_ids if j in parked]
    for job_id in targets:
        queue.failed_job_registry.remove(job_id, delete_job=True)
        queue.connection.delete(results_key(job_id))  # RQ leaves its results stream
    return len(targets)
