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
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from service import catchup, jobs, logs
from service.adapters.history import History, history_entry
from service.adapters.outage import RedisOutage
from service.adapters.parked import compact_reason, store_compactly
from service.adapters.queue import EventQueue, connect, make_queue, redis_url
from service.adapters.stats import Stats
from service.adapters.steadyworker import SteadyWorker
from service.adapters.sweepstore import SweepStore
from service.errors import CloseClientError, LoopSuspectedError
from service.events import EnvelopeError, event_from_dict
from service.settings import Settings
from service.sweeps import schedule as sweeps

log = logging.getLogger("dealkeeper.worker")
PERMANENT_ERRORS = (CloseClientError, EnvelopeError, LoopSuspectedError)


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

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (at start, then every maintenance interval), the sweeps due
        soon scheduled, once across all workers (service/sweeps/schedule.py), and the
        organization of CLOSE_API_KEY asked of Close when due (adapters/organization.py)."""
        super().run_maintenance_tasks()
        context = jobs.installed()
        if self.plans_sweeps:
            sweeps.plan_safely(context.rules, store=SweepStore(self.connection))
        if context.organization is not None:
            context.organization.refresh_if_due()

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        """RQ's handling, with the traceback it keeps trimmed to the frame that raised and
        the exception (Close's answer) and the parked store held to its cap
        (service/adapters/parked.py)."""
        reason = compact_reason(exc_string)
        super().handle_job_failure(job, queue, started_job_registry, exc_string=reason)
        if job.get_status(refresh=False) == JobStatus.FAILED:  # parked, not retried
            store_compactly(queue, job, reason)


def make_worker(settings: Settings, *, name: str | None = None) -> DealkeeperWorker:
    """A worker on the event queue, with the job context installed."""
    connection = connect(redis_url(settings), role="worker")
    # A worker started while Redis is away (a restart, a deploy's overlap on a full Redis)
    # waits for it rather than exiting.
    RedisOutage(connection, role="worker").ride(connection.ping)
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
