"""Riding out a Redis that is away: a restart, a failover, a network blip.

A worker must outlive any such outage, at any point of its life: it logs once that Redis is
away, asks again with a capped backoff, logs once that it is back, and goes on in the same
process. RQ's own loop only survives a lost connection while it waits on the queue; every
other Redis call (heartbeat, suspension check, maintenance, a job's bookkeeping) ends the
worker. service/processing/worker.py wraps those calls with `RedisOutage.ride`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("dealkeeper.redis")
# Errors that mean "Redis cannot be reached now" (a restarting Redis answers LOADING, which
# redis-py raises as BusyLoadingError, a ConnectionError), not "the command was wrong".
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError)
FIRST_WAIT_SEC = 0.5
MAX_WAIT_SEC = 5.0  # once Redis is back, work goes on within this

T = TypeVar("T")


class StoppedWaitingError(Exception):
    """The process was asked to stop while it waited for Redis."""


class RedisOutage:
    """Waits for Redis to answer again; one log line when it goes, one when it is back."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        role: str,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.role = role
        self.should_stop = should_stop
        self._sleep = sleep
        self._clock = clock

    def ride(self, call: Callable[[], T]) -> T:
        """`call()`, waiting out any Redis outage and calling again until it goes through
        (StoppedWaitingError when the process is asked to stop meanwhile)."""
        while True:
            try:
                return call()
            except REDIS_AWAY as error:
                self.wait_until_back(error)

    def wait_until_back(self, error: BaseException) -> None:
        """Block until Redis answers a PING (StoppedWaitingError when asked to stop meanwhile)."""
        started, wait = self._clock(), FIRST_WAIT_SEC
        # The error's text names the host and port at most, never a password.
        log.warning("redis_unavailable", extra={"role": self.role, "error": str(error)})
        while True:
            if self.should_stop():
                raise StoppedWaitingError(f"stopped while Redis was away ({error})")
            self._sleep(wait)
            if self._answers():
                break
            wait = min(wait * 2, MAX_WAIT_SEC)
        away = round(self._clock() - started, 1)
        log.info("redis_back", extra={"role": self.role, "away_sec": away})

    def _answers(self) -> bool:
        try:
            return bool(self.connection.ping())
        except REDIS_AWAY:
            return False
