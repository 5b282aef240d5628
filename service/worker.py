"""The worker process: `dealkeeper worker`.

It runs RQ's SimpleWorker, which performs jobs in its own process instead of forking one
per job. Our jobs are short, trusted and spend their time waiting on Close, so a fork buys
no isolation worth its cost (RQ's forking Worker managed about 50 no-op jobs/s per process
on our 2-core machine, SimpleWorker about 350). It also makes SIGTERM simple: the first
SIGTERM lets the job in hand finish and then stops, well inside Heroku's 30 seconds, where
the forking Worker's horse would be killed mid-request. RQ still enforces the job timeout
(SIGALRM), and the scheduler runs in the same process so retries come back on time.
"""

from __future__ import annotations

import logging
from types import TracebackType

from rq import SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from service import jobs, logs
from service.adapters.queue import connect, make_queue, redis_url
from service.adapters.stats import Stats
from service.errors import CloseClientError
from service.events import EnvelopeError
from service.settings import Settings

log = logging.getLogger("dealkeeper.worker")
PERMANENT_ERRORS = (CloseClientError, EnvelopeError)


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
        log.error("job_parked", extra={"job_id": job.id, "reason": str(exc_value)})
    return True  # let RQ's own handling record the failure as usual


def make_worker(settings: Settings, *, name: str | None = None) -> SimpleWorker:
    """A worker on the event queue, with the job context installed."""
    connection = connect(redis_url(settings), role="worker")
    jobs.install(jobs.build_context(settings, connection=connection))
    return SimpleWorker(
        [make_queue(connection)],
        connection=connection,
        serializer=JSONSerializer,
        exception_handlers=[park_permanent_failures],
        name=name,
    )


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work until stopped (or, with burst, until the queue is empty)."""
    logs.configure_for(settings)
    worker = make_worker(settings, name=name)
    log.info("worker_started", extra={"worker": worker.name, "settings": settings.describe()})
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level))
