"""A worker that outlives Redis outages and whose killed jobs are taken back in seconds.

RQ's work loop survives a lost Redis connection only while it waits on the queue; anywhere
else (its heartbeat, the suspension check, maintenance, a job's bookkeeping, starting up)
the exception ends the worker, and events queued after Redis came back wait until someone
restarts it. Here every one of those calls waits Redis out (service/adapters/outage.py),
and a job whose bookkeeping Redis could not take is queued again once it is back: its
re-read of the opportunity keeps its write from being made twice.

The housekeeping thread (service/adapters/housekeeping.py) keeps the job in hand alive,
takes back the jobs of killed workers, and moves due scheduled jobs to the queue; RQ's
forked scheduler is not used.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from rq import Queue
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus
from rq.utils import as_text

from service.adapters.housekeeping import Housekeeper, InHand
from service.adapters.outage import REDIS_AWAY, RedisOutage, StoppedWaitingError
from service.adapters.queue import EventJob
from service.adapters.workerclass import LeanSimpleWorker
from service.config import defaults

log = logging.getLogger("dealkeeper.worker")
T = TypeVar("T")
# How long RQ's own dequeue waits between attempts while Redis is away, at most (its
# default, 60 s, would leave a worker idle for up to a minute after Redis came back).
MAX_CONNECTION_WAIT_SEC = 5
_ENDED = (
    JobStatus.FINISHED,
    JobStatus.FAILED,
    JobStatus.SCHEDULED,
    JobStatus.CANCELED,
    JobStatus.STOPPED,
    JobStatus.DEFERRED,
)


class SteadyWorker(LeanSimpleWorker):
    """LeanSimpleWorker that waits Redis out and keeps its job alive from a thread."""

    job_class = EventJob  # jobs stored under a function's old name still run

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connection_wait_time = MAX_CONNECTION_WAIT_SEC
        self.in_hand = InHand()
        self.outage = RedisOutage(
            self.connection, role="worker", should_stop=lambda: bool(self._stop_requested)
        )
        self.housekeeper: Housekeeper | None = None

    # -- waiting Redis out -------------------------------------------------------------------

    def _ride(self, call: Callable[[], T]) -> T:
        try:
            return self.outage.ride(call)
        except StoppedWaitingError as stop:
            raise StopRequested() from stop

    def register_birth(self) -> None:
        attempts = 0

        def register() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # A registration whose answer was lost is ours: write it again.
                self.connection.delete(self.key)
            super(SteadyWorker, self).register_birth()  # type: ignore[no-untyped-call]

        self._ride(register)

    def subscribe(self) -> None:
        self._ride(super().subscribe)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)
            return
        self._ride(lambda: super(SteadyWorker, self).set_state(state))

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        self._ride(lambda: super(SteadyWorker, self).heartbeat(timeout))

    def check_for_suspension(self, burst: bool) -> None:
        self._ride(lambda: super(SteadyWorker, self).check_for_suspension(burst))

    def run_maintenance_tasks(self) -> None:
        self._ride(super().run_maintenance_tasks)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        return self._ride(
            lambda: super(SteadyWorker, self).dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        )

    # -- the job in hand ----------------------------------------------------------------------

    def get_heartbeat_ttl(self, job: Job) -> int:
        """The job's started entry lapses soon unless renewed (housekeeping renews it)."""
        return defaults.JOB_KEEPALIVE_TTL_SEC

    def prepare_execution(self, job: Job) -> Any:
        execution = super().prepare_execution(job)
        self.in_hand.job_started(
            job.started_job_registry.key, execution.composite_key, execution.key
        )
        return execution

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any) -> None:
        """RQ's success handling, once more after dropping executions Redis lost (a restart,
        a killed run): RQ deletes a job whose result is not kept by fetching each execution
        it lists, and takes one that is gone for a failure of the job."""
        try:
            super().handle_job_success(job, queue, started_job_registry)
        except ValueError:
            if not _forget_lost_executions(job):
                raise
            super().handle_job_success(job, queue, started_job_registry)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_AWAY as error:
            log.warning("job_interrupted", extra={"job_id": job.id, "error": str(error)})
            self._after_outage(error, lambda: self._queue_again(job, queue, after="redis outage"))
        finally:
            self.in_hand.job_ended()

    def _after_outage(self, error: BaseException, then: Callable[[], None]) -> None:
        try:
            self.outage.wait_until_back(error)
        except StoppedWaitingError as stop:
            raise StopRequested() from stop
        self._ride(then)

    def _queue_again(self, job: Job, queue: Queue, *, after: str) -> None:
        """Queue a job again, at the head, uncounted: one whose run Redis lost track of, or
        one Close refused our key for (neither lost nor applied twice: it re-reads the
        opportunity before any write)."""
        status = job.get_status(refresh=True) if job.exists(job.id, self.connection) else None
        if status in _ENDED:
            return  # its bookkeeping went through; only the answer was lost
        listed = self.connection.lpos(queue.key, job.id) is not None
        if status == JobStatus.QUEUED and listed:
            return
        with self.connection.pipeline() as pipe:
            pipe.multi()  # before any command: RQ's enqueue_job asks for a MULTI pipeline
            if self.execution is not None:
                # Its execution too: one left listed after its hash expires (a long pause
                # for a refused key) fails the job's deletion once it succeeds.
                self.execution.delete(job=job, pipeline=pipe)
            pipe.lrem(queue.intermediate_queue_key, 0, job.id)
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        log.warning("job_queued_again", extra={"job_id": job.id, "after": after})

    # -- start and stop -----------------------------------------------------------------------

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        queue = self.queues[0]
        self.housekeeper = Housekeeper(queue, owner=self.name, in_hand=self.in_hand)
        # Once before the first job, so a burst worker queues what is due as RQ's would.
        self._ride(self.housekeeper.tick)
        self.housekeeper.start()

    def teardown(self) -> None:
        with _stop_signals_ignored():
            if self.housekeeper is not None:
                self.housekeeper.stop()
            try:
                super().teardown()  # type: ignore[no-untyped-call]
            except REDIS_AWAY as error:
                # Stopping must not wait for Redis: the worker's entry lapses on its own.
                log.warning("worker_stopped_without_redis", extra={"error": str(error)})
                with contextlib.suppress(*REDIS_AWAY):
                    self.unsubscribe()


@contextlib.contextmanager
def _stop_signals_ignored() -> Iterator[None]:
    """While the worker tears down, a SIGTERM (the platform's, or a person's Ctrl-C) only
    says so in the log: RQ's handler would raise StopRequested in the middle of the
    teardown and end the process with 1 (seen once in the Redis-outage fault test on a
    loaded machine). The teardown is bounded, so nothing waits on it. The handlers are put
    back afterwards (a process that runs workers in turn, such as a test)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGTERM, signal.SIGINT)
    before = {stop: signal.signal(stop, _already_stopping) for stop in stops}
    try:
        yield
    finally:
        for stop, handler in before.items():
            signal.signal(stop, handler)


def _already_stopping(signum: int, frame: Any) -> None:
    log.info("worker_already_stopping", extra={"signal": signal.Signals(signum).name})


def _forget_lost_executions(job: Job) -> int:
    """Unlist the job's executions whose hash is gone; how many were."""
    registry_key = job.execution_registry.key
    listed = cast(list[bytes], job.connection.zrange(registry_key, 0, -1))
    ids = [as_text(i) for i in listed]
    lost = [i for i in ids if not job.connection.exists(f"rq:execution:{job.id}:{i}")]
    if lost:
        job.connection.zrem(registry_key, *lost)
    return len(lost)
