"""Sweeps in Redis and RQ: checkpoints, one run of a sweep at a time, scheduling once.

    dk:sweep:checkpoint:<sweep>:<epoch>   JSON progress of the run scheduled at <epoch>
    dk:sweep:scheduled:<sweep>:<epoch>    set (NX) by the one process that schedules that run
    dk:sweep:lock:<sweep>                 held while a slice of a run of <sweep> works
    dk:sweep:runs:<sweep>                 the last runs' summaries, newest first
    dk:sweep:outcomes:<sweep>:<epoch>     hash: outcome -> count of the jobs a run queued
                                          that finished (applied, no_update, ...)

Each run is an RQ job scheduled with `enqueue_at` (the built-in scheduler, one per queue,
moves it to the queue on time) under a fixed job id, after a SET NX on its guard: any
number of processes may plan the same run and only one job exists. RQ 2.x ignores
`unique` for scheduled jobs (stack-notes 1.2), which is why the guard is ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import redis
from redis.exceptions import LockError, RedisError
from rq import Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from service.adapters.queue import make_queue
from service.config.errors import QueueUnavailableError
from service.core.events import Event

CHECKPOINT_PREFIX = "dk:sweep:checkpoint:"
GUARD_PREFIX = "dk:sweep:scheduled:"
LOCK_PREFIX = "dk:sweep:lock:"
RUNS_PREFIX = "dk:sweep:runs:"
RUNS_KEPT = 20
# A run's job outcomes outlive its record for a daily sweep (20 runs); a month is plenty.
OUTCOMES_PREFIX = "dk:sweep:outcomes:"
OUTCOMES_TTL_SEC = 35 * 24 * 3600
# A slice killed with its worker is run again by RQ once the job is found abandoned.
SLICE_RETRY_INTERVALS_SEC = (10, 60, 300)


class SweepLock:
    """The hold on one sweep; refresh it between pages of a long run."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def refresh(self) -> None:
        """Start the lock's time to live again."""
        with suppress(LockError):
            self._lock.reacquire()


class SweepStore:
    """Checkpoints, locks, guards and run records of sweeps."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def load(self, sweep: str, *, epoch: int) -> dict[str, Any] | None:
        """The run's checkpoint, if it saved one."""
        raw = self.connection.get(f"{CHECKPOINT_PREFIX}{sweep}:{epoch}")
        return None if raw is None else dict(json.loads(raw))

    def save(self, sweep: str, *, epoch: int, checkpoint: Mapping[str, Any], ttl_sec: int) -> None:
        """Keep the run's checkpoint for `ttl_sec`."""
        text = json.dumps(dict(checkpoint), default=str)
        self.connection.set(f"{CHECKPOINT_PREFIX}{sweep}:{epoch}", text, ex=ttl_sec)

    def claim(self, sweep: str, *, epoch: int, ttl_sec: int) -> bool:
        """True for the one caller that gets to schedule this run; QueueUnavailableError
        when Redis does not answer."""
        key = f"{GUARD_PREFIX}{sweep}:{epoch}"
        try:
            return bool(self.connection.set(key, 1, nx=True, ex=ttl_sec))
        except RedisError as error:
            raise QueueUnavailableError(f"Redis did not answer: {error}") from error

    def unclaim(self, sweep: str, *, epoch: int) -> None:
        """Give the claim back (its job could not be scheduled); best effort."""
        with suppress(RedisError):
            self.connection.delete(f"{GUARD_PREFIX}{sweep}:{epoch}")

    @contextmanager
    def lock(self, sweep: str, *, ttl_sec: int) -> Iterator[SweepLock | None]:
        """Hold the sweep while the block runs; None when another process holds it."""
        lock = self.connection.lock(LOCK_PREFIX + sweep, timeout=ttl_sec, blocking=False)
        if not lock.acquire():
            yield None
            return
        try:
            yield SweepLock(lock)
        finally:
            with suppress(LockError):  # it outlived its TTL: the work is done anyway
                lock.release()

    def record_run(self, sweep: str, *, summary: Mapping[str, Any]) -> None:
        """Remember a finished run (the last RUNS_KEPT are kept)."""
        key = RUNS_PREFIX + sweep
        with self.connection.pipeline() as pipe:
            pipe.lpush(key, json.dumps(dict(summary), default=str))
            pipe.ltrim(key, 0, RUNS_KEPT - 1)
            pipe.execute()

    def runs(self, sweep: str) -> list[dict[str, Any]]:
        """The sweep's recorded runs, newest first."""
        return [json.loads(raw) for raw in self.connection.lrange(RUNS_PREFIX + sweep, 0, -1)]

    def record_outcome(self, pipe: Any, event: Event, plan: Any, result: Mapping[str, Any]) -> None:
        """A JobContext.finish_writers entry: a job a sweep queued counts its outcome for
        its run (the event happened at the run's scheduled time), on the job's final
        pipeline; other events write nothing."""
        if not event.sweep:
            return
        key = f"{OUTCOMES_PREFIX}{event.sweep}:{int(event.date_created.timestamp())}"
        pipe.hincrby(key, str(result.get("outcome", "unknown")), 1)
        pipe.expire(key, OUTCOMES_TTL_SEC)

    def recent_runs(
        self, sweeps: Sequence[str], *, count: int
    ) -> dict[str, list[tuple[dict[str, Any], dict[str, int]]]]:
        """The last `count` runs of each sweep, newest first, each with the outcomes of the
        jobs it queued so far: two round trips, however many sweeps."""
        with self.connection.pipeline(transaction=False) as pipe:
            for sweep in sweeps:
                pipe.lrange(RUNS_PREFIX + sweep, 0, count - 1)
            listed = pipe.execute()
        runs = {
            sweep: [_run(raw) for raw in found] for sweep, found in zip(sweeps, listed, strict=True)
        }
        wanted = [(sweep, _epoch(run)) for sweep, found in runs.items() for run in found]
        with self.connection.pipeline(transaction=False) as pipe:
            for sweep, epoch in wanted:
                pipe.hgetall(f"{OUTCOMES_PREFIX}{sweep}:{epoch}")
            outcomes = iter(pipe.execute())
        return {
            sweep: [(run, _counts(next(outcomes))) for run in found]
            for sweep, found in runs.items()
        }


def _run(raw: bytes | str) -> dict[str, Any]:
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _epoch(run: Mapping[str, Any]) -> int | None:
    try:
        return int(datetime.fromisoformat(str(run.get("at"))).timestamp())
    except ValueError:
        return None


def _counts(raw: Mapping[Any, Any]) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}


def schedule_job(
    connection: redis.Redis,
    function: str,
    *,
    at: datetime,
    args: Sequence[Any],
    job_id: str,
    timeout_sec: int,
) -> None:
    """Have RQ's scheduler queue the job at `at`, retried if its worker dies;
    QueueUnavailableError when Redis does not take it."""
    try:
        make_queue(connection).enqueue_at(
            at,
            function,
            *args,
            job_id=job_id,
            job_timeout=timeout_sec,
            result_ttl=24 * 3600,
            retry=_retry(),
            description=f"{function.rsplit('.', 1)[-1]} {' '.join(map(str, args))}",
        )
    except RedisError as error:
        raise QueueUnavailableError(f"Redis did not take the job: {error}") from error


def enqueue_job(
    connection: redis.Redis, function: str, *, args: Sequence[Any], job_id: str, timeout_sec: int
) -> bool:
    """Queue the job now; False when a job with that id exists already."""
    try:
        make_queue(connection).enqueue_call(
            function,
            args=tuple(args),
            job_id=job_id,
            timeout=timeout_sec,
            result_ttl=24 * 3600,
            retry=_retry(),
            unique=True,
        )
    except DuplicateJobError:
        return False
    return True


def job_results(connection: redis.Redis, *, job_ids: Sequence[str]) -> dict[str, tuple[str, Any]]:
    """(status, return value) of each job that still exists: queued, finished, failed, ..."""
    jobs = Job.fetch_many(list(job_ids), connection=connection, serializer=JSONSerializer)
    found = {}
    for job in jobs:
        if job is not None:
            status = job.get_status(refresh=False)
            found[job.id] = (str(getattr(status, "value", status)), job.return_value())
    return found


def _retry() -> Retry:
    intervals = list(SLICE_RETRY_INTERVALS_SEC)
    return Retry(max=len(intervals), interval=intervals)
