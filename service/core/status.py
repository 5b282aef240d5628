"""What `dealkeeper status` shows: the service's state as data, a table for people, JSON for
scripts.

Pure: service/adapters/snapshot.py collects a Status from Redis; the time to measure ages
against comes in as `now`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from service.core.redispolicy import EvictionPolicy
from service.core.rules.unknown import UnknownField

# For durations: a unit and the next smaller one shown beside it.
_UNITS = ((86400, "d", 3600, "h"), (3600, "h", 60, "m"), (60, "m", 1, "s"))


@dataclass(frozen=True)
class QueueState:
    """The event queue and its registries."""

    waiting: int
    in_progress: int
    scheduled: int
    failed: int
    oldest_waiting_at: float | None  # when the job at the head of the queue was queued
    workers: int


@dataclass(frozen=True)
class RulesState:
    """The rules this release's files hold (what its processes load)."""

    path: str
    count: int | None
    digest: str | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RateLimit:
    """Close's rate-limit header on the last answer that carried one."""

    limit: int | None
    remaining: int | None
    reset_sec: float | None
    seen_at: float
    method: str
    path: str


@dataclass(frozen=True)
class CatchUpRun:
    """The counts of the last automatic catch-up (service/processing/catchup.py), and when
    it ran."""

    at: float
    read: int
    queued: int
    duplicates: int
    skipped: int
    no_payload: int  # read without their data (a non-admin key): left for the webhook


@dataclass(frozen=True)
class KeyRefusal:
    """Close refused CLOSE_API_KEY (service/adapters/authfault.py): workers wait."""

    status: int | None  # Close's answer: 401, or 403 when GET /me/ was refused too
    reason: str  # Close's words, never the key
    since: float  # when a worker first met it
    key_fingerprint: str  # a hash of the refused key, to tell keys apart; never the key


@dataclass(frozen=True)
class Status:
    """Everything `dealkeeper status` reports."""

    queue: QueueState
    rules: RulesState
    last_webhook_at: float | None
    last_close_call_at: float | None
    rate_limit: RateLimit | None
    close_requests: int = 0
    close_rate_limited: int = 0
    close_retries: int = 0
    events: Mapping[str, int] = field(default_factory=dict)  # processed, by outcome
    webhooks: Mapping[str, int] = field(default_factory=dict)  # answered, by outcome
    catch_up: CatchUpRun | None = None
    redis_policy: EvictionPolicy = field(default_factory=lambda: EvictionPolicy(None))
    key_refused: KeyRefusal | None = None
    # Names rules use that Close no longer knows (service/core/rules/unknown.py).
    unknown_fields: tuple[UnknownField, ...] = ()


def to_json(status: Status, *, now: float) -> dict[str, Any]:
    """Plain data for `--json`: times as ISO 8601 UTC, ages in seconds."""
    queue = asdict(status.queue)
    queue["oldest_waiting_age_sec"] = _age(status.queue.oldest_waiting_at, now)
    data: dict[str, Any] = {
        "at": iso(now),
        "queue": queue,
        "rules": asdict(status.rules),
        "last_webhook_at": iso(status.last_webhook_at),
        "last_webhook_age_sec": _age(status.last_webhook_at, now),
        "last_close_call_at": iso(status.last_close_call_at),
        "last_close_call_age_sec": _age(status.last_close_call_at, now),
        "close_rate_limit": None,
        "close_requests": {
            "total": status.close_requests,
            "rate_limited": status.close_rate_limited,
            "retries": status.close_retries,
        },
        "events": dict(status.events),
        "webhooks": dict(status.webhooks),
        "last_catch_up": None,
        "redis": {
            "maxmemory_policy": status.redis_policy.name,
            "may_evict": status.redis_policy.may_evict,
            "problem": status.redis_policy.problem(),
        },
        "close_key_refused": _key_refused_json(status.key_refused),
        "rule_fields_unknown": [entry.to_dict() for entry in status.unknown_fields],
    }
    if status.catch_up is not None:
        data["last_catch_up"] = {**asdict(status.catch_up), "at": iso(status.catch_up.at)}
    data["rules"]["problems"] = list(status.rules.problems)
    data["queue"]["oldest_waiting_at"] = iso(status.queue.oldest_waiting_at)
    if status.rate_limit is not None:
        seen = asdict(status.rate_limit)
        seen["seen_at"] = iso(status.rate_limit.seen_at)
        data["close_rate_limit"] = seen
    return data


def _key_refused_json(refused: KeyRefusal | None) -> dict[str, Any] | None:
    if refused is None:
        return None
    return {**asdict(refused), "since": iso(refused.since), "hint": KEY_REFUSED_HINT}


KEY_REFUSED_HINT = (
    "events wait in the queue, none is lost; set a working CLOSE_API_KEY and restart the "
    "workers, or make the key work again at Close: workers go on by themselves"
)


def render_table(status: Status, *, now: float) -> str:
    """Two aligned columns, one fact per line."""
    rows = [
        ("queue", _queue_line(status.queue, now)),
        ("workers", str(status.queue.workers)),
        ("rules", _rules_line(status.rules)),
        ("last webhook", _moment(status.last_webhook_at, now)),
        ("last Close call", _moment(status.last_close_call_at, now)),
        ("Close rate limit", _rate_limit_line(status.rate_limit, now)),
        ("Close requests", _requests_line(status)),
        ("events", _counts_line(status.events)),
        ("webhooks", _counts_line(status.webhooks)),
        ("Redis policy", _policy_line(status.redis_policy)),
    ]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"dealkeeper status at {_clock(now)}"]
    lines += [f"{name:<{width}}{value}" for name, value in rows]
    lines += [f"  {problem}" for problem in status.rules.problems]
    lines += _catch_up_warning(status.catch_up, now)
    lines += _key_refused_warning(status.key_refused, now)
    lines += _unknown_fields_warning(status.unknown_fields)
    return "\n".join(lines)


def _unknown_fields_warning(unknown: tuple[UnknownField, ...]) -> list[str]:
    """Said only while a rule uses a name Close no longer knows: that rule does not fire."""
    if not unknown:
        return []
    lines = [
        f"{len(unknown)} name(s) rules use are unknown to Close now; those rules do not fire "
        "until the rules or Close are fixed (dealkeeper validate --online):"
    ]
    return lines + [f"  rule {e.rule}: {e.field}: {e.reason}" for e in unknown]


def _policy_line(policy: EvictionPolicy) -> str:
    if policy.name is None:
        return "unknown (Redis refused INFO and CONFIG): make sure it is noeviction"
    problem = policy.problem()
    return policy.name if problem is None else f"DANGER: {problem}"


def _catch_up_warning(run: CatchUpRun | None, now: float) -> list[str]:
    """Said only when the last catch-up left events for the webhook: they need a human."""
    if run is None or not run.no_payload:
        return []
    return [
        f"last catch-up found {run.no_payload} event(s) without their data (a non-admin API "
        "key reads an event's data only for an hour): they were left for Close's webhook "
        "retries; give catch-up an admin's API key, or run a sweep to recover a longer "
        f"outage ({_clock(run.at)}, {duration(now - run.at)} ago)"
    ]


def _key_refused_warning(refused: KeyRefusal | None, now: float) -> list[str]:
    """Said only while Close refuses the key: workers take no event until it works."""
    if refused is None:
        return []
    since = f"{_clock(refused.since)}, {duration(now - refused.since)} ago"
    return [
        f"Close refuses CLOSE_API_KEY ({refused.reason}; since {since}): workers are "
        f"paused; {KEY_REFUSED_HINT}"
    ]


def _queue_line(queue: QueueState, now: float) -> str:
    oldest = ""
    if queue.oldest_waiting_at is not None:
        oldest = f" (oldest {duration(now - queue.oldest_waiting_at)})"
    return (
        f"{queue.waiting} waiting{oldest}, {queue.in_progress} in progress, "
        f"{queue.scheduled} scheduled, {queue.failed} failed"
    )


def _rules_line(rules: RulesState) -> str:
    if rules.count is None:
        return f"INVALID in {rules.path}: {len(rules.problems)} problem(s), shown below"
    return f"{rules.count} rules in {rules.path} (digest {rules.digest})"


def _rate_limit_line(seen: RateLimit | None, now: float) -> str:
    if seen is None:
        return "not seen yet"
    left = "?" if seen.remaining is None else str(seen.remaining)
    limit = "?" if seen.limit is None else str(seen.limit)
    reset = "" if seen.reset_sec is None else f", reset in {seen.reset_sec:g}s"
    where = f"{seen.method} {seen.path}, {duration(now - seen.seen_at)} ago"
    return f"{left} of {limit} left{reset} ({where})"


def _requests_line(status: Status) -> str:
    return (
        f"{status.close_requests} ({status.close_rate_limited} rate limited, "
        f"{status.close_retries} retries)"
    )


def _counts_line(counts: Mapping[str, int]) -> str:
    if not counts:
        return "none yet"
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def _moment(at: float | None, now: float) -> str:
    return "never" if at is None else f"{_clock(at)} ({duration(now - at)} ago)"


def _age(at: float | None, now: float) -> float | None:
    return None if at is None else round(max(now - at, 0.0), 3)


def iso(at: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC with milliseconds, e.g. 2026-11-30T03:10:05.123Z."""
    if at is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def duration(seconds: float) -> str:
    """A short human duration: 0.4s, 12s, 3m 12s, 2h 5m, 3d 4h."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    for size, unit, smaller, small_unit in _UNITS:
        if whole >= size:
            return f"{whole // size}{unit} {whole % size // smaller}{small_unit}"
    return f"{whole}s"
