"""What a worker process does beside its jobs, on a thread of its own, every second.

- **Keep what it holds alive.** The job in hand is listed in RQ's started registry, and the
  opportunity it writes is locked, each for a few seconds at a time, renewed every second.
  A SIGKILLed worker (OOM, a lost node) stops renewing: within JOB_KEEPALIVE_TTL_SEC its
  job counts as abandoned and its lock lapses. RQ's SimpleWorker renews nothing while a
  job runs, so its entries had to last the whole job timeout: an event of a killed worker
  then waited a minute and a half.
- **Take back abandoned jobs.** Any live worker finds a started entry that was not renewed
  and queues its job again at the front at once (RQ's own cleanup, every maintenance
  interval, would schedule it seconds later). The job re-reads the opportunity before it
  writes, so a write that had reached Close is not made twice. A job abandoned more often
  than it may be retried is left to RQ's cleanup, which parks it.
- **Move due scheduled jobs to the queue** (retries, rescheduled events, catch-up, sweeps),
  in the process that holds RQ's scheduler lock for the queue. RQ runs this in a forked
  child; a fork taken while another thread holds a lock can hang the child for good, and
  the child died on any Redis error.

A Redis outage only skips ticks here; the worker's main thread reports it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock
from rq.utils import parse_composite_key

from service.adapters.locks import OpportunityLock
from service.adapters.outage import REDIS_AWAY
from service.adapters.stats import Stats
from service.config import defaults

log = logging.getLogger("dealkeeper.housekeeping")
TICK_SEC = 1.0
# Abandoned jobs taken back per tick, at most (the rest on the next ones).
TAKE_BACK_BATCH = 50


class InHand:
    """The job a worker runs now and the opportunity locks it holds (thread-safe)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entry: tuple[str, str, str] | None = None  # registry key, member, execution key
        self._locks: list[OpportunityLock] = []

    def job_started(self, registry_key: str, member: str, execution_key: str) -> None:
        with self._guard:
            self._entry = (registry_key, member, execution_key)

    def job_ended(self) -> None:
        with self._guard:
            self._entry = None
            self._locks.clear()

    def keep(self, lock: OpportunityLock) -> None:
        """Renew `lock` with the job until it is given back."""
        with self._guard:
            self._locks.append(lock)

    def renew_on(self, pipe: Any, *, ttl_sec: float, now: float) -> bool:
        """Queue the renewals on `pipe`; False when nothing is held."""
        with self._guard:
            self._locks = [lock for lock in self._locks if lock.held]
            entry, locks = self._entry, list(self._locks)
        if entry is not None:
            registry_key, member, execution_key = entry
            pipe.zadd(registry_key, {member: now + ttl_sec}, xx=True)  # only while listed
            pipe.expire(execution_key, int(ttl_sec) + 1)
        for lock in locks:
            lock.extend_on(pipe, ttl_sec=ttl_sec)
        return entry is not None or bool(locks)


def take_back_abandoned(queue: Queue, *, now: float) -> list[str]:
    """Queue again, at the front, the jobs whose started entry was not renewed; their ids."""
    connection, registry = queue.connection, queue.started_job_registry
    if not connection.zrangebyscore(registry.key, 0, now, start=0, num=1):
        return []  # the usual answer, for one cheap round trip
    # RQ's registry cleaning takes the same lock: never two workers at one entry.
    if not queue.acquire_maintenance_lock():
        return []
    try:
        members = cast(
            list[bytes],
            connection.zrangebyscore(registry.key, 0, now, start=0, num=TAKE_BACK_BATCH),
        )
        return [job_id for m in members if (job_id := _take_back(queue, _text(m)))]
    finally:
        queue.release_maintenance_lock()  # type: ignore[no-untyped-call]  # RQ leaves it untyped


def _take_back(queue: Queue, member: str) -> str | None:
    connection, registry = queue.connection, queue.started_job_registry
    job_id, _execution = parse_composite_key(member)
    try:
        job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
    except NoSuchJobError:
        connection.zrem(registry.key, member)
        return None
    if job.get_status(refresh=False) != JobStatus.STARTED:
        connection.zrem(registry.key, member)  # it ended; only its entry was left
        return None
    if not job.retries_left:
        return None  # abandoned too often: RQ's cleanup parks it with AbandonedJobError
    job.retries_left -= 1
    with connection.pipeline() as pipe:
        pipe.multi()  # before any command: RQ's enqueue_job asks for a MULTI pipeline
        # The dead run's execution goes too, not only its registry entry: RQ deletes a job
        # whose result is not kept by fetching each listed execution, and fails the job
        # when one listed has expired.
        Execution.from_composite_key(member, connection).delete(job=job, pipeline=pipe)
        queue.enqueue_job(job, pipeline=pipe, at_front=True)
        Stats(connection).incr("jobs_taken_back_total", target=pipe)
        pipe.execute()
    log.warning("job_taken_back", extra={"job_id": job.id, "retries_left": job.retries_left})
    return job.id


class Scheduling:
    """RQ's scheduler for one queue, run on the housekeeping thread of the process that
    holds RQ's scheduler lock (any other process stands by and takes over when it lapses)."""

    def __init__(self, queue: Queue, *, owner: str, lock_ttl_sec: int) -> None:
        self.queue = queue
        self.owner = owner
        self.lock_ttl_sec = lock_ttl_sec
        self.lock_key = RQScheduler.get_locking_key(queue.name)
        self.registry = ScheduledJobRegistry(  # type: ignore[no-untyped-call]  # as above
            queue.name, connection=queue.connection, serializer=queue.serializer
        )

    def enqueue_due(self, *, now: float) -> int:
        """Queue the scheduled jobs due by `now`, if this process schedules; how many."""
        connection = self.queue.connection
        outcome = acquire_or_refresh_lock(connection, self.lock_key, self.owner, self.lock_ttl_sec)
        if outcome not in ("acquired", "refreshed"):
            return 0
        job_ids = self.registry.get_jobs_to_schedule(int(now))
        if not job_ids:
            return 0
        jobs = Job.fetch_many(job_ids, connection=connection, serializer=self.queue.serializer)
        with connection.pipeline() as pipe:
            pipe.multi()  # before any command: RQ's enqueue_job asks for a MULTI pipeline
            for job in jobs:
                if job is not None:
                    self.queue.enqueue_job(
                        job, pipeline=pipe, at_front=job.should_enqueue_at_front()
                    )
            for job_id in job_ids:
                self.registry.remove(job_id, pipeline=pipe)
            pipe.execute()
        return len(job_ids)

    def release(self) -> None:
        release_lock(self.queue.connection, self.lock_key, self.owner)


class Housekeeper:
    """The housekeeping thread of one worker process."""

    def __init__(
        self,
        queue: Queue,
        *,
        owner: str,
        in_hand: InHand,
        keepalive_ttl_sec: float = defaults.JOB_KEEPALIVE_TTL_SEC,
        tick_sec: float = TICK_SEC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.in_hand = in_hand
        self.keepalive_ttl_sec = keepalive_ttl_sec
        self.tick_sec = tick_sec
        self.scheduling = Scheduling(
            queue, owner=owner, lock_ttl_sec=defaults.SCHEDULER_LOCK_TTL_SEC
        )
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and hand the scheduler lock on (when Redis answers)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick_sec * 5)
        with contextlib.suppress(*REDIS_AWAY):  # else it lapses in SCHEDULER_LOCK_TTL_SEC
            self.scheduling.release()

    def tick(self) -> None:
        """One round: renew what is held, take back abandoned jobs, queue due ones."""
        now = self._clock()
        with self.queue.connection.pipeline(transaction=False) as pipe:
            if self.in_hand.renew_on(pipe, ttl_sec=self.keepalive_ttl_sec, now=now):
                pipe.execute()
        take_back_abandoned(self.queue, now=now)
        self.scheduling.enqueue_due(now=now)

    def _run(self) -> None:
        while not self._stopping.wait(self.tick_sec):
            try:
                self.tick()
            except REDIS_AWAY:
                continue  # the main thread waits Redis out and says so
            except (redis.RedisError, ValueError, TypeError):
                # A bad entry must not end the thread that keeps every job alive.
                log.exception("housekeeping_failed")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
