"""The deal-hygiene report kept in Redis for the console, and its one background refresh.

    dk:console:report           JSON {"computed_at": epoch s, "report": the report document}
    dk:console:report:failure   JSON {"at": epoch s, "error": text} of the last failed refresh
    dk:console:report:refresh   SET NX while a refresh is queued or running (value: when it
                                was queued); the job deletes it when it ends

Opening the report page never reads Close: it shows what is kept here and, when that is old
or absent, asks for a refresh. Many page loads (many people, many tabs, reloads) queue one
job: the guard is taken with SET NX before the job is queued, and lapses on its own should
the job never end (a worker killed mid-run), so a later page load can ask again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from service.adapters.queue import make_queue
from service.config.errors import QueueUnavailableError

REPORT_KEY = "dk:console:report"
FAILURE_KEY = "dk:console:report:failure"
REFRESH_KEY = "dk:console:report:refresh"
REFRESH_JOB = "service.processing.hygiene.refresh_report"
# A report older than this is refreshed in the background when someone looks at it.
STALE_AFTER_SEC = 15 * 60
# What one refresh may take: the job stops listing at its budget, RQ kills it at the
# timeout, and the guard outlives both (plus time waiting in the queue) before it lapses.
REFRESH_BUDGET_SEC = 10 * 60
REFRESH_TIMEOUT_SEC = 15 * 60
REFRESH_GUARD_TTL_SEC = 30 * 60


@dataclass(frozen=True)
class Failure:
    """The last refresh that did not finish, and why."""

    at: float
    error: str


@dataclass(frozen=True)
class CachedReport:
    """What the page shows: the last report, the last failure, a refresh under way."""

    report: dict[str, Any] | None
    computed_at: float | None
    failure: Failure | None
    refreshing_since: float | None

    def is_stale(self, *, now: float) -> bool:
        """Old or absent, and no refresh failed recently (a failing Close is not asked again
        at every page load: "Refresh now" does that)."""
        if self.computed_at is not None and now - self.computed_at < STALE_AFTER_SEC:
            return False
        return self.failure is None or now - self.failure.at >= STALE_AFTER_SEC


def read_cached(connection: redis.Redis) -> CachedReport:
    """The kept report, failure and guard, in one round trip."""
    pipe = connection.pipeline(transaction=False)
    pipe.get(REPORT_KEY)
    pipe.get(FAILURE_KEY)
    pipe.get(REFRESH_KEY)
    kept, failed, guard = pipe.execute()
    entry = _json(kept)
    failure = _json(failed)
    report = entry.get("report") if entry else None
    return CachedReport(
        report=report if isinstance(report, dict) else None,
        computed_at=_number(entry.get("computed_at")) if entry else None,
        failure=Failure(_number(failure.get("at")) or 0.0, str(failure.get("error", "")))
        if failure
        else None,
        refreshing_since=_number(guard) if guard is not None else None,
    )


def store_report(connection: redis.Redis, report: dict[str, Any], *, computed_at: float) -> None:
    """Keep a computed report (forgetting an earlier failure)."""
    pipe = connection.pipeline(transaction=True)
    pipe.set(REPORT_KEY, json.dumps({"computed_at": computed_at, "report": report}))
    pipe.delete(FAILURE_KEY)
    pipe.execute()


def store_failure(connection: redis.Redis, error: str, *, at: float) -> None:
    """Keep why a refresh did not finish (the last good report stays)."""
    connection.set(FAILURE_KEY, json.dumps({"at": at, "error": error}))


def refresh_ended(connection: redis.Redis) -> None:
    """Let the next page load ask for a refresh again."""
    connection.delete(REFRESH_KEY)


def request_refresh(connection: redis.Redis, *, now: float | None = None) -> bool:
    """Queue one refresh job unless one is queued or running; True when this call queued it.
    QueueUnavailableError when Redis cannot take it (the guard is then let go)."""
    at = time.time() if now is None else now
    try:
        if not connection.set(REFRESH_KEY, repr(at), nx=True, ex=REFRESH_GUARD_TTL_SEC):
            return False
    except RedisError as error:
        raise QueueUnavailableError(f"Redis did not answer: {error}") from error
    try:
        make_queue(connection).enqueue_call(
            REFRESH_JOB,
            job_id=f"report-refresh-{time.time_ns()}",
            timeout=REFRESH_TIMEOUT_SEC,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as error:
        connection.delete(REFRESH_KEY)
        raise QueueUnavailableError(f"Redis did not take the refresh job: {error}") from error
    return True


def _json(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
