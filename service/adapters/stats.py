"""Counters, a histogram and last-seen facts kept in Redis, shared by every web and worker process.

Web and worker processes run on different machines on Heroku, so per-process counters (or
prometheus_client's multiprocess files) could not be summed by one scrape of /metrics; a
Redis hash can. Every write here is one pipelined round trip.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from service.core.status import CatchUpRun, RateLimit

if TYPE_CHECKING:
    from service.adapters.close import Exchange

log = logging.getLogger("dealkeeper.stats")
STATS_KEY = "dk:stats"
LAST_KEY = "dk:last"
RATE_LIMIT_KEY = "dk:close:rate_limit"
CATCH_UP_KEY = "dk:catchup:last"
HISTOGRAM_PREFIX = "dk:hist:"
LAST_WEBHOOK_FIELD = "last_webhook_at"
# Deliveries that passed the signature, the organization and the envelope checks: proof
# Close reaches us. A refusal must not move the last-webhook time, or a storm of 401s from
# a wrong CLOSE_WEBHOOK_SECRET would look like healthy traffic. An ignored event (another
# object type) counts: Close delivered it, signed with our key.
ACCEPTED_WEBHOOK_OUTCOMES = frozenset({"queued", "duplicate", "ignored"})
# From an event's time in Close to our write: seconds when all is well, Close's consolidation
# delay for updates, minutes behind a rate limit, hours after an outage or a catch-up.
LAG_BUCKETS_SEC = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
HISTOGRAMS = {"event_lag_seconds": LAG_BUCKETS_SEC}
# Without an answer, or with one Close's client retries (429, 5xx): the next attempt of the
# same method and path is counted as a retry.
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_FAILING_REMEMBERED = 1000


@dataclass(frozen=True)
class Sample:
    """One counter value with its labels."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class HistogramData:
    """A histogram as Prometheus shows it: cumulative counts per upper bound, sum and count."""

    name: str
    buckets: tuple[tuple[str, float], ...]  # ("1.0", n), ..., ("+Inf", count)
    sum: float
    count: float


def _field(name: str, labels: dict[str, str]) -> str:
    return json.dumps([name, sorted(labels.items())], separators=(",", ":"))


@functools.cache
def webhook_counter_field(outcome: str) -> str:
    """The field of webhooks_total{outcome=...} in STATS_KEY (cached: a few outcomes exist)."""
    return _field("webhooks_total", {"outcome": outcome})


def bucket_for(value: float, bounds: Sequence[float]) -> str:
    """The field a value is counted in: the first upper bound at or above it, else +Inf."""
    return next((repr(float(b)) for b in bounds if value <= b), "+Inf")


class Stats:
    """Increment counters and stamp times; read them back for /metrics and status."""

    def __init__(self, connection: redis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self.connection = connection
        self.clock = clock
        self._failing: set[tuple[str, str]] = set()  # this process's calls awaiting a retry
        # Close observations a job keeps for its final pipeline (None: write at once).
        self._deferred: list[tuple[Exchange, bool, float]] | None = None

    def incr(self, name: str, *, target: Any = None, amount: int = 1, **labels: str) -> None:
        """Add to a counter, on `target` (a pipeline) when given."""
        (self.connection if target is None else target).hincrby(
            STATS_KEY, _field(name, labels), amount
        )

    def mark(self, name: str, *, target: Any = None) -> None:
        """Remember when something last happened (e.g. last_webhook_at)."""
        (self.connection if target is None else target).hset(LAST_KEY, name, repr(self.clock()))

    def record_webhook(self, target: Any, *, outcome: str) -> None:
        self.incr("webhooks_total", target=target, outcome=outcome)
        if outcome in ACCEPTED_WEBHOOK_OUTCOMES:
            self.mark(LAST_WEBHOOK_FIELD, target=target)

    def webhook_record(self, *, outcome: str) -> tuple[str, str]:
        """What record_webhook writes, for a script that writes it itself: the counter's
        field in STATS_KEY, and the time to put under LAST_WEBHOOK_FIELD in LAST_KEY."""
        return webhook_counter_field(outcome), repr(self.clock())

    def observe(self, name: str, value: float, *, target: Any = None) -> None:
        """Count `value` in histogram `name` (one of HISTOGRAMS)."""
        key = HISTOGRAM_PREFIX + name
        with _pipeline(self.connection, target) as pipe:
            pipe.hincrby(key, bucket_for(value, HISTOGRAMS[name]), 1)
            pipe.hincrbyfloat(key, "sum", value)
            pipe.hincrby(key, "count", 1)

    def observe_lag(self, seconds: float, *, target: Any = None) -> None:
        """How long after the event happened in Close its update was written."""
        self.observe("event_lag_seconds", max(seconds, 0.0), target=target)

    def observe_lag_since(self, moment: datetime, *, target: Any = None) -> None:
        """observe_lag from an aware moment (an event's date_created) to now."""
        self.observe_lag(self.clock() - moment.timestamp(), target=target)

    def observe_close(self, exchange: Exchange) -> None:
        """CloseClient's observer: count the attempt, stamp it, keep its rate-limit header.

        Inside `deferred()` the writes wait for the job's own final pipeline (one round
        trip for all of a job's bookkeeping). Otherwise they are written at once; a failed
        counter must not fail the Close call it describes, so Redis errors are logged and
        dropped.
        """
        observed = (exchange, self._note_attempt(exchange), self.clock())
        if self._deferred is not None:
            self._deferred.append(observed)
            return
        self._write_now([observed])

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Keep Close observations for `flush_deferred`; what is left is written at the end."""
        self._deferred = []
        try:
            yield
        finally:
            left, self._deferred = self._deferred, None
            if left:
                self._write_now(left)

    def flush_deferred(self, pipe: Any) -> None:
        """Add the Close observations kept so far to `pipe`."""
        for observed in self._deferred or ():
            self._record_close(pipe, *observed)
        if self._deferred:
            self._deferred.clear()

    def _write_now(self, observed: list[tuple[Exchange, bool, float]]) -> None:
        try:
            with _pipeline(self.connection, None) as pipe:
                for item in observed:
                    self._record_close(pipe, *item)
        except redis.RedisError as error:
            log.warning("stats_not_recorded", extra={"reason": str(error)})

    def _record_close(self, pipe: Any, exchange: Exchange, retried: bool, at: float) -> None:
        method, status = exchange.method, str(exchange.status or "none")
        self.incr("close_requests_total", target=pipe, method=method, status=status)
        if exchange.status == 429:
            self.incr("close_rate_limited_total", target=pipe)
        if retried:
            self.incr("close_retries_total", target=pipe, method=method)
        pipe.hset(LAST_KEY, "last_close_call_at", repr(at))
        if exchange.rate_limit is not None:
            pipe.hset(RATE_LIMIT_KEY, mapping=self._rate_limit_fields(exchange, at))

    def _note_attempt(self, exchange: Exchange) -> bool:
        """Whether this attempt repeats one that failed in a retryable way."""
        key = (exchange.method, exchange.path)
        retried = key in self._failing
        if exchange.status is None or exchange.status in _RETRIED_STATUSES:
            if len(self._failing) >= _MAX_FAILING_REMEMBERED:
                self._failing.clear()  # calls that were given up on; never grow unbounded
            self._failing.add(key)
        else:
            self._failing.discard(key)
        return retried

    def _rate_limit_fields(self, exchange: Exchange, at: float) -> dict[str, str]:
        info = exchange.rate_limit
        assert info is not None
        values = {"limit": info.limit, "remaining": info.remaining, "reset_sec": info.reset_sec}
        fields = {k: "" if v is None else repr(v) for k, v in values.items()}
        fields.update(seen_at=repr(at), method=exchange.method, path=exchange.path)
        return fields

    def samples(self) -> list[Sample]:
        """Every counter, sorted by name and labels."""
        found = []
        for field, value in self.connection.hgetall(STATS_KEY).items():
            name, labels = json.loads(field)
            found.append(Sample(name, tuple((k, v) for k, v in labels), float(value)))
        return sorted(found, key=lambda s: (s.name, s.labels))

    def histograms(self) -> list[HistogramData]:
        """Every declared histogram, observed or not."""
        return [self._histogram(name, bounds) for name, bounds in HISTOGRAMS.items()]

    def _histogram(self, name: str, bounds: Sequence[float]) -> HistogramData:
        raw = self.connection.hgetall(HISTOGRAM_PREFIX + name)
        stored = {_text(k): float(v) for k, v in raw.items()}
        counts = {k: v for k, v in stored.items() if k not in ("sum", "count")}
        total = stored.get("count", 0.0)
        cumulative = []
        for bound in bounds:
            # A field whose bound is not declared (buckets changed) counts under the next one.
            below = sum(v for k, v in counts.items() if k != "+Inf" and float(k) <= bound)
            cumulative.append((repr(float(bound)), below))
        cumulative.append(("+Inf", total))
        return HistogramData(name, tuple(cumulative), stored.get("sum", 0.0), total)

    def last_times(self) -> dict[str, float]:
        return {
            _text(key): float(value) for key, value in self.connection.hgetall(LAST_KEY).items()
        }

    def last_rate_limit(self) -> RateLimit | None:
        """The rate-limit header of the last Close answer that carried one."""
        raw = {_text(k): _text(v) for k, v in self.connection.hgetall(RATE_LIMIT_KEY).items()}
        if not raw:
            return None
        return RateLimit(
            limit=_optional(raw.get("limit"), int),
            remaining=_optional(raw.get("remaining"), int),
            reset_sec=_optional(raw.get("reset_sec"), float),
            seen_at=float(raw.get("seen_at") or 0),
            method=raw.get("method", ""),
            path=raw.get("path", ""),
        )

    def record_catch_up(self, run: CatchUpRun) -> None:
        """Keep the counts of the catch-up that ran last, replacing those before."""
        fields: dict[Any, str] = {name: repr(value) for name, value in vars(run).items()}
        self.connection.hset(CATCH_UP_KEY, mapping=fields)  # the same fields every time

    def last_catch_up(self) -> CatchUpRun | None:
        """The counts of the catch-up that ran last, if one did."""
        raw = {_text(k): _text(v) for k, v in self.connection.hgetall(CATCH_UP_KEY).items()}
        if not raw:
            return None
        counts = {name: int(raw.get(name) or 0) for name in CATCH_UP_COUNTS}
        return CatchUpRun(at=float(raw.get("at") or 0), **counts)


CATCH_UP_COUNTS = ("read", "queued", "duplicates", "skipped", "no_payload")


@contextmanager
def _pipeline(connection: redis.Redis, target: Any) -> Iterator[Any]:
    """The caller's pipeline as it is, or a fresh non-transactional one executed at the end."""
    if target is not None:
        yield target
        return
    with connection.pipeline(transaction=False) as pipe:
        yield pipe
        pipe.execute()


def _optional(value: str | None, kind: Callable[[str], Any]) -> Any:
    return None if value in (None, "") else kind(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
