"""The per-opportunity lock: no two workers apply events of one opportunity at once.

dk:lock:opportunity:<id>   the holder's token, with a TTL past the holder's job timeout
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import redis
from redis.exceptions import RedisError

from service.config.errors import OpportunityBusyError

LOCK_PREFIX = "dk:lock:opportunity:"
# KEYS[1]: the lock; ARGV[1]: the holder's token. Deletes the lock only if still ours (it
# may have lapsed and been taken by another worker); 1 when deleted, else 0.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS[1]: the lock; ARGV: the holder's token, the new TTL in ms. Extends it only if still
# ours; 1 when extended, else 0.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
LOCK_POLL_SEC = 0.02


class OpportunityLock:
    """One worker's hold on an opportunity: SET NX with a TTL and a token of its own.

    Taking it can carry reads in the same round trip (MULTI/EXEC: what they read is read
    under the lock), and giving it back can ride on the job's final pipeline, so the lock
    costs no round trips of its own on the usual path.
    """

    def __init__(
        self, connection: redis.Redis, opportunity_id: str, *, ttl_sec: float, wait_sec: float
    ) -> None:
        self.connection = connection
        self.opportunity_id = opportunity_id
        self.key = LOCK_PREFIX + opportunity_id
        self.token = uuid.uuid4().hex
        self.ttl_ms = max(1, round(ttl_sec * 1000))
        self.wait_sec = wait_sec
        self.held = False
        self.replies: list[Any] = []  # the replies of the reads taken with the lock

    def acquire(self, reads: Callable[[Any], None] | None = None) -> None:
        """Take the lock (waiting up to wait_sec), running `reads` on the same MULTI/EXEC;
        OpportunityBusyError when another worker keeps it, or Redis cannot be asked."""
        deadline = time.monotonic() + self.wait_sec
        while True:
            taken = self._try(reads)
            if taken:
                return
            if time.monotonic() >= deadline:
                raise OpportunityBusyError(f"{self.opportunity_id} is held by another worker")
            time.sleep(LOCK_POLL_SEC)

    def _try(self, reads: Callable[[Any], None] | None) -> bool:
        try:
            with self.connection.pipeline(transaction=True) as pipe:
                pipe.set(self.key, self.token, nx=True, px=self.ttl_ms)
                if reads is not None:
                    reads(pipe)
                # A read Redis refuses must not hide that the lock was taken: its error is
                # left in `replies` for the reader.
                taken, *replies = pipe.execute(raise_on_error=False)
        except RedisError as error:
            raise OpportunityBusyError(f"could not lock {self.opportunity_id}: {error}") from error
        if isinstance(taken, Exception):
            raise OpportunityBusyError(f"could not lock {self.opportunity_id}: {taken}")
        if taken:
            self.held, self.replies = True, replies
        return bool(taken)

    def release_on(self, pipe: Any) -> None:
        """Queue the release on `pipe` (the job's final MULTI/EXEC); call `released` once
        it has run, else `release` still gives the lock back on its own."""
        pipe.eval(_RELEASE, 1, self.key, self.token)

    def extend_on(self, pipe: Any, *, ttl_sec: float) -> None:
        """Queue the renewal of the lock for `ttl_sec` more on `pipe` (a worker's
        housekeeping keeps it while the job runs, so a killed holder's lapses soon)."""
        pipe.eval(_EXTEND, 1, self.key, self.token, max(1, round(ttl_sec * 1000)))

    def released(self) -> None:
        self.held = False

    def release(self) -> None:
        """Give the lock back now, if still held; a Redis error leaves it to lapse."""
        if not self.held:
            return
        self.held = False
        with suppress(RedisError):
            self.connection.eval(_RELEASE, 1, self.key, self.token)
