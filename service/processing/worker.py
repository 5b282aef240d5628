"""The worker process: `dealkeeper worker`.

It runs RQ's SimpleWorker, which performs jobs in its own process instead of forking one
per job. Our jobs are short, trusted and spend their time waiting on Close, so a fork buys
no isolation worth its cost (RQ's forking Worker managed about 50 no-op jobs/s per process
on our 2-core machine, SimpleWorker about 350). It also makes SIGTERM simple: the first
SIGTERM lets the job in hand finish and then stops, well inside Heroku's 30 seconds, where
the forking Worker's horse would be killed mid-request. RQ still enforces the job timeout
(SIGALRM). A thread of the same process keeps the job in hand alive, takes back the jobs of
killed workers and moves due retries to the queue (service/adapters/steadyworker.py).
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

from rq import Queue
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from service.adapters.eviction import log_at_start
from service.adapters.history import History, history_entry
from service.adapters.outage import RedisOutage
from service.adapters.parked import compact_reason, store_compactly
from service.adapters.queue import EventQueue, connect, make_queue, redis_url
from service.adapters.stats import Stats
from service.adapters.steadyworker import SteadyWorker
from service.adapters.sweepstore import SweepStore
from service.config.errors import CloseClientError, CloseKeyRefusedError, LoopSuspectedError
from service.config.settings import Settings
from service.core.events import EnvelopeError, event_from_dict
from service.observability import logs
from service.processing import catchup, jobs
from service.processing.sweeps import schedule as sweeps

log = logging.getLogger("dealkeeper.worker")
PERMANENT_ERRORS = (CloseClientError, EnvelopeError, LoopSuspectedError)
# How often a worker paused for a refused key looks again (and, in its turn, probes Close);
# a SIGTERM interrupts the wait at once.
KEY_WAIT_POLL_SEC = 1.0


def park_permanent_failures(
    job: Job,
    exc_type: type[BaseException],
    exc_value: BaseException,
    traceback: TracebackType | None,
) -> bool:
    """RQ exception handler: a permanent failure skips the remaining retries and is parked."""
    if isinstance(exc_value, PERMANENT_ERRORS):
        job.retries_left = 0
        Stats(job.connection).incr("jobs_parked_total")
        _remember_parked(job, reason=str(exc_value), status=getattr(exc_value, "status", None))
        log.error("job_parked", extra={"job_id": job.id, "reason": str(exc_value)})
    return True  # let RQ's own handling record the failure as usual


def _remember_parked(job: Job, *, reason: str, status: int | None) -> None:
    """The opportunity's history shows the parked event too, with Close's answer."""
    try:
        event = event_from_dict(job.args[0])
    except (EnvelopeError, IndexError, TypeError):
        return
    entry = history_entry(
        event, outcome="parked", processed_at=time.time(), close_status=status, detail=reason
    )
    History(job.connection).record(entry)


class DealkeeperWorker(SteadyWorker):
    """The worker of the event queue: rides out Redis outages, keeps its job alive, and
    plans the sweeps that are due."""

    plans_sweeps = False  # make_worker turns it on when a Close key lets sweeps list deals
    _held_back: str | None = None  # the job whose failure was Close refusing our key

    # -- a refused CLOSE_API_KEY (service/adapters/authfault.py) --------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        if self._wait_for_key(burst=timeout is None):
            return None  # a burst worker ends: nothing may be taken until the key works
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def _wait_for_key(self, *, burst: bool) -> bool:
        """Take no job while Close refuses the key (heartbeats and maintenance go on);
        True when a burst worker would have to wait."""
        gate = jobs.installed().key_gate
        paused = False
        while gate is not None and self._ride(gate.refused):
            if burst:
                return True
            if not paused:
                paused = True
                self.set_state("suspended")
                self.procline("paused: Close refuses CLOSE_API_KEY")  # type: ignore[no-untyped-call]
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self.run_maintenance_tasks()
            if self._stop_requested:
                raise StopRequested()
            time.sleep(KEY_WAIT_POLL_SEC)  # SIGTERM raises StopRequested from here
        return False

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        if self._key_refused(exc_info[1]):
            self._held_back = job.id  # not the job's fault: no traceback, no parking
            return
        super().handle_exception(job, *exc_info)

    def _key_refused(self, error: BaseException) -> bool:
        if isinstance(error, CloseKeyRefusedError):
            return True
        # Jobs other than events (catch-up, sweeps) meet the refusal as Close's own error.
        gate = jobs.installed().key_gate
        return isinstance(error, CloseClientError) and gate is not None and bool(gate.judge(error))

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        """A job Close refused our key for goes back to the queue; any other failure is
        RQ's, with the traceback it keeps trimmed to the frame that raised and the exception
        (Close's answer) and the parked store held to its cap (service/adapters/parked.py)."""
        if self._held_back == job.id:
            self._held_back = None
            self._ride(lambda: self._queue_again(job, queue, after="close key refused"))
            return
        reason = compact_reason(exc_string)
        super().handle_job_failure(job, queue, started_job_registry, exc_string=reason)
        if job.get_status(refresh=False) == JobStatus.FAILED:  # parked, not retried
            store_compactly(queue, job, reason)

    # -- maintenance ------------------------------------------------------------------------

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (at start, then every maintenance interval), the sweeps due
        soon scheduled, once across all workers (service/processing/sweeps/schedule.py), and the
        organization of CLOSE_API_KEY asked of Close when due (adapters/organization.py)."""
        super().run_maintenance_tasks()
        context = jobs.installed()
        if self.plans_sweeps:
            sweeps.plan_safely(context.rules, store=SweepStore(self.connection))
        if context.organization is not None:
            context.organization.refresh_if_due()


def make_worker(settings: Settings, *, name: str | None = None) -> DealkeeperWorker:
    """A worker on the event queue, with the job context installed."""
    connection = connect(redis_url(settings), role="worker")
    # A worker started while Redis is away (a restart, a deploy's overlap on a full Redis)
    # waits for it rather than exiting.
    RedisOutage(connection, role="worker").ride(connection.ping)
    log_at_start(connection, log)
    jobs.install(jobs.build_context(settings, connection=connection))
    worker = DealkeeperWorker(
        [make_queue(connection)],
        connection=connection,
        serializer=JSONSerializer,
        exception_handlers=[park_permanent_failures],
        name=name,
        queue_class=EventQueue,
        worker_ttl=settings.tuning.worker_ttl_sec,
        maintenance_interval=settings.tuning.maintenance_interval_sec,
    )
    worker.plans_sweeps = bool(settings.close_api_key)
    jobs.installed().in_hand = worker.in_hand  # its opportunity locks are kept alive too
    return worker


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work until stopped (or, with burst, until the queue is empty)."""
    logs.configure_for(settings)
    worker = make_worker(settings, name=name)
    log.info("worker_started", extra={"worker": worker.name, "settings": settings.describe()})
    interval = settings.tuning.catchup_interval_sec
    if interval > 0 and not settings.dry_run:
        catchup.schedule_next(make_queue(worker.connection), interval_sec=interval)
    # Scheduled jobs are moved to the queue by the worker's housekeeping thread, not by a
    # forked RQ scheduler (service/adapters/housekeeping.py).
    return bool(worker.work(burst=burst, with_scheduler=False, logging_level=settings.log_level))
