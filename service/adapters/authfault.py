"""A refused CLOSE_API_KEY pauses every worker instead of parking every event.

A 401 from Close (or a 403 that `GET /me/` confirms: Close also answers 403 for one
operation a user may not do, which is the event's problem, not the key's) says the key is
wrong, revoked, or its organization cannot use the API. Every event would meet it, so:

    dk:close:auth_fault        hash: status, reason, since, key_fingerprint; expires after
                               AUTH_FAULT_TTL_SEC unless a worker still meets the refusal
    dk:close:auth_fault:probe  taken (SET NX, expiring) by the one worker whose turn it is
                               to ask `GET /me/`; its expiry paces the probes (capped backoff)

The job that met the refusal goes back to the head of the queue, uncounted; workers take no
job while the flag is up and probe `GET /me/` (Close's documented key check); a 200 clears
the flag and every worker goes on. A worker whose key differs from the one refused (a
restart with a new key) probes at once. The fingerprint is a hash: the key is never stored.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

import redis

from service.adapters.close import CloseAPI
from service.config.errors import CloseAPIError, CloseKeyRefusedError
from service.core.status import KEY_REFUSED_HINT, KeyRefusal

log = logging.getLogger("dealkeeper.authfault")
AUTH_FAULT_KEY = "dk:close:auth_fault"
PROBE_KEY = "dk:close:auth_fault:probe"
KEY_STATUSES = frozenset({401, 403})
# Outlives many probes, but a deployment whose workers are all gone does not keep it.
AUTH_FAULT_TTL_SEC = 600
# Probes of a refused key: 1, 2, 4, 8 then every 10 s across all workers, so a key fixed
# at Close is noticed within seconds at the cost of a GET a few seconds.
PROBE_FIRST_SEC = 1.0
PROBE_CAP_SEC = 10.0
# How often a worker with no refusal in view looks at the flag: at most one round trip a
# second, not one per job (a job that meets the refusal meanwhile goes back to the queue).
CHECK_INTERVAL_SEC = 1.0


def key_fingerprint(api_key: str) -> str:
    """A short hash that tells two keys apart and cannot give either back."""
    return hashlib.sha256(b"dealkeeper-key:" + api_key.encode()).hexdigest()[:12]


def read_refusal(connection: redis.Redis) -> KeyRefusal | None:
    """The recorded refusal, or None while the key is not known to be refused."""
    raw = connection.hgetall(AUTH_FAULT_KEY)
    if not raw:
        return None
    found = {_text(k): _text(v) for k, v in raw.items()}
    status = found.get("status", "")
    return KeyRefusal(
        status=int(status) if status.isdigit() else None,
        reason=found.get("reason", ""),
        since=float(found.get("since") or 0.0),
        key_fingerprint=found.get("key_fingerprint", ""),
    )


class KeyGate:
    """A worker's view of the key: judges Close's refusals, pauses, probes, resumes."""

    def __init__(
        self,
        connection: redis.Redis,
        close: CloseAPI,
        *,
        api_key: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connection
        self._close = close
        self._fingerprint = key_fingerprint(api_key)
        self._clock = clock
        self._checked_at: float | None = None
        self._refused = False
        self._probes = 0  # failed probes in a row: the backoff's exponent
        self._tried_own_key = False  # whether this key was probed against the recorded refusal
        # The last 403 found to be the event's own: the worker sees the same error again
        # after the job did, and need not ask /me/ twice.
        self._not_the_key: CloseAPIError | None = None

    def judge(self, error: CloseAPIError) -> CloseKeyRefusedError | None:
        """The key fault `error` shows, recorded for every worker; None when it is the
        event's own (any other status, or a 403 while GET /me/ does not refuse the key)."""
        if error.status not in KEY_STATUSES or error is self._not_the_key:
            return None
        if error.status == 403:
            # Close answers 403 "when an operation was not allowed": a deal this key's user
            # may not edit is the event's problem. Only /me/ refused too blames the key.
            confirmed = self._me_error()
            if confirmed is None or confirmed.status not in KEY_STATUSES:
                self._not_the_key = error
                return None
            error = confirmed
        self.record(error.status, str(error))
        return CloseKeyRefusedError(f"Close refused CLOSE_API_KEY: {error}", status=error.status)

    def record(self, status: int | None, reason: str) -> None:
        """Raise the flag; the worker that raised it says so, once, at ERROR."""
        with self._connection.pipeline() as pipe:
            pipe.hsetnx(AUTH_FAULT_KEY, "since", self._clock())
            pipe.hset(
                AUTH_FAULT_KEY,
                mapping={
                    "status": "" if status is None else str(status),
                    "reason": reason,
                    "key_fingerprint": self._fingerprint,
                },
            )
            pipe.expire(AUTH_FAULT_KEY, AUTH_FAULT_TTL_SEC)
            first, *_ = pipe.execute()
        self._refused, self._tried_own_key = True, True
        if first:
            extra = {"status": status, "reason": reason, "hint": KEY_REFUSED_HINT}
            log.error("close_key_refused", extra=extra)

    def refused(self) -> bool:
        """Whether workers must wait; probes Close when it is this worker's turn."""
        now = time.monotonic()
        recent = self._checked_at is not None and now - self._checked_at < CHECK_INTERVAL_SEC
        if recent and not self._refused:
            return False
        self._checked_at = now
        found = read_refusal(self._connection)
        self._refused = found is not None
        if found is None:
            self._probes, self._tried_own_key = 0, False
            return False
        if self._probe_due(found):
            return not self.probe()
        return True

    def _probe_due(self, found: KeyRefusal) -> bool:
        if found.key_fingerprint != self._fingerprint and not self._tried_own_key:
            return True  # another key was refused: ours may work, try it now
        pause = min(PROBE_CAP_SEC, PROBE_FIRST_SEC * 2**self._probes)
        return bool(self._connection.set(PROBE_KEY, "1", nx=True, px=int(pause * 1000)))

    def probe(self) -> bool:
        """Ask GET /me/; True when the key works again (the flag is then cleared)."""
        self._tried_own_key = True
        error = self._me_error()
        if error is not None:
            self._probes += 1
            if error.status in KEY_STATUSES:
                self.record(error.status, str(error))
            return False  # refused, or Close unreachable: nothing known, the flag stays
        self._connection.delete(AUTH_FAULT_KEY, PROBE_KEY)
        self._refused, self._probes = False, 0
        log.warning("close_key_accepted", extra={"hint": "the events waiting in the queue go on"})
        return True

    def _me_error(self) -> CloseAPIError | None:
        """What GET /me/ answered when it did not answer 200."""
        try:
            self._close.get_me()
        except CloseAPIError as error:
            return error
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
