"""The RQ worker class dealkeeper runs: RQ's SimpleWorker with fewer Redis round trips."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import now

# A worker heartbeat repeating the last one (same TTL) this soon after it is not sent.
HEARTBEAT_REPEAT_SEC = 1.0
SUSPENSION_CHECK_INTERVAL_SEC = 1.0
# How long the thread listening for `rq` commands waits for one before it looks again
# whether it is to stop: the longest it can delay a worker's exit.
COMMAND_POLL_SEC = 1.0

log = logging.getLogger("dealkeeper.worker")


class LeanSimpleWorker(SimpleWorker):
    """RQ's SimpleWorker with the same writes in fewer round trips.

    RQ writes a worker heartbeat as HSET then EXPIRE, two round trips, three times a job,
    marks the worker idle twice between jobs, and asks Redis whether workers are suspended
    before every job. Here a heartbeat is one pipelined round trip, one that repeats the
    last (same TTL, under a second later) is not sent, a state already written is not
    written again (a new one goes with a heartbeat), a short job's extra heartbeat once it
    ended is not sent, and suspension is looked up at most once a second. On this machine a
    round trip costs about as much CPU as the job's own Python does, so this is most of
    what the worker class leaves to win.
    """

    _last_beat: tuple[int, float] | None = None  # (TTL, monotonic time) of the last heartbeat
    _suspension_checked_at: float | None = None

    def subscribe(self) -> None:
        # RQ's listener waits up to 60 s for a command. Once RQ has unsubscribed at exit,
        # redis-py 8 waits out that whole time before the thread looks at its stop flag,
        # and its stop() joins the thread without a limit: most exits took a minute, past
        # Heroku's 30 s before SIGKILL. A short wait bounds the exit; it costs one poll of
        # an idle socket a second, no Redis command.
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # RQ types it None
            sleep_time=COMMAND_POLL_SEC,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def unsubscribe(self) -> None:
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        # Redis away: the subscription ends with the connection anyway.
        with contextlib.suppress(redis.ConnectionError):
            pubsub.unsubscribe()
        thread.stop()  # redis-py 8 joins here: within COMMAND_POLL_SEC
        thread.join(timeout=COMMAND_POLL_SEC * 3)  # redis-py 6 and 7 do not
        pubsub.close()
        self.pubsub_thread = None

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        ttl = timeout or self.worker_ttl + 60  # RQ's own default
        beat = (ttl, time.monotonic())
        if pipeline is not None:
            super().heartbeat(ttl, pipeline=pipeline)
            self._last_beat = beat
            return
        # RQ beats after a job, before dequeuing and after dequeuing: back to back, the
        # second and third only repeat the first (a dequeue that waited beats again).
        last = self._last_beat
        if last is not None and last[0] == ttl and beat[1] - last[1] < HEARTBEAT_REPEAT_SEC:
            return
        with self.connection.pipeline() as pipe:
            super().heartbeat(ttl, pipeline=pipe)
            pipe.hexists(self.key, "pid")
            *_, whole = pipe.execute()
        self._last_beat = beat
        if not whole:
            self._register_again()

    def _register_again(self) -> None:
        # The heartbeat's HSET found the worker's key gone (Redis restarted without it) and
        # left a hash with only `last_heartbeat`: listed, but with no pid or queues (seen
        # once in the Redis-restart fault test). The registration is written again, whole.
        log.warning("worker_registered_again", extra={"worker": self.name})
        self.connection.delete(self.key)
        self.register_birth()  # type: ignore[no-untyped-call]

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)
            return
        if state == self.get_state():
            return  # Redis holds it already: set_state is the worker's only writer of it
        # A state of its own is written after each job (idle), right before RQ's heartbeat:
        # both go in one round trip, and that heartbeat is then a repeat, not sent.
        with self.connection.pipeline() as pipe:
            super().set_state(state, pipeline=pipe)
            self.heartbeat(pipeline=pipe)
            pipe.execute()

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        # RQ beats for the job once it ended, a round trip, so that handling its result
        # cannot outlast the heartbeat it was started with. A job that ended well inside
        # that heartbeat's TTL has that margin already.
        ended = now()
        started = job.started_at
        if started is not None and (ended - started).total_seconds() < heartbeat_ttl / 2:
            job.ended_at = ended
            return
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def check_for_suspension(self, burst: bool) -> None:
        # `rq suspend` is an operator's command: honoured within a second, not a round
        # trip before every job.
        now = time.monotonic()
        checked = self._suspension_checked_at
        if checked is not None and now - checked < SUSPENSION_CHECK_INTERVAL_SEC:
            return
        super().check_for_suspension(burst)
        self._suspension_checked_at = time.monotonic()
