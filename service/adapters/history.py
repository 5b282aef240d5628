"""What dealkeeper did with each event, per opportunity, kept in Redis for 30 days.

    dk:history:<opportunity id>   list of JSON entries, newest first, at most 100, expiring
                                  30 days after its last write
    dk:history-index              sorted set: opportunity id -> time of its last entry, so
                                  the number of opportunities with a history stays capped

`dealkeeper history oppo_...` reads it. Recording is best effort: a history that cannot be
written is logged and skipped, never a reason to fail (and so retry) an applied event.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from service.events import Event
from service.rules import Plan

log = logging.getLogger("dealkeeper.history")
HISTORY_PREFIX = "dk:history:"
HISTORY_INDEX = "dk:history-index"
HISTORY_TTL_SEC = 30 * 24 * 3600
HISTORY_PER_OPPORTUNITY = 100
HISTORY_MAX_OPPORTUNITIES = 100_000
# Trimming past the cap costs a second round trip; doing a batch at once keeps it rare.
TRIM_BATCH_FRACTION = 0.01
# What Close answered, by job outcome: a PUT was sent for these two only (4xx answers park
# the job before it finishes; other outcomes make no call).
CLOSE_STATUS_BY_OUTCOME = {"applied": 200, "opportunity_gone": 404}


@dataclass(frozen=True)
class HistoryEntry:
    """One evaluated event: what fired, the update, and what Close answered."""

    event_id: str
    opportunity_id: str
    event_type: str  # "opportunity.updated"
    event_time: str  # ISO 8601: when the change happened in Close
    processed_at: float  # epoch seconds: when dealkeeper finished with it
    outcome: str  # applied, dry_run, no_update, own_change, opportunity_gone, ...
    fired: list[str] = field(default_factory=list)
    update: dict[str, Any] = field(default_factory=dict)
    close_status: int | None = None  # HTTP status of the PUT; None when nothing was sent
    detail: str = ""

    def to_json(self) -> str:
        """Compact JSON, as stored."""
        return json.dumps(asdict(self), separators=(",", ":"), default=str, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> HistoryEntry:
        """The entry stored as `text`; ValueError (or TypeError) when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a history entry must be a JSON object")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def history_entry(
    event: Event,
    *,
    outcome: str,
    processed_at: float,
    plan: Plan | None = None,
    close_status: int | None = None,
    detail: str = "",
) -> HistoryEntry:
    """The entry for an event a job finished with (plan: None when no rule was evaluated)."""
    ignored = plan.ignored if plan is not None else None
    return HistoryEntry(
        event_id=event.id,
        opportunity_id=event.object_id,
        event_type=event.name,
        event_time=event.date_created.isoformat(),
        processed_at=processed_at,
        outcome=outcome,
        fired=list(plan.fired) if plan else [],
        update=dict(plan.update or plan.dry_run_update) if plan else {},
        close_status=close_status,
        detail=detail or ignored or "",
    )


class History:
    """Per-opportunity history of evaluated events, in Redis."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        ttl_sec: int = HISTORY_TTL_SEC,
        per_opportunity: int = HISTORY_PER_OPPORTUNITY,
        max_opportunities: int = HISTORY_MAX_OPPORTUNITIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = connection
        self.ttl_sec = ttl_sec
        self.per_opportunity = per_opportunity
        self.max_opportunities = max_opportunities
        self._clock = clock

    def on_job_finished(self, event: Event, plan: Plan | None, result: Mapping[str, Any]) -> None:
        """A JobContext.on_finish hook: record the event a job has just finished with."""
        outcome = str(result.get("outcome", "unknown"))
        entry = history_entry(
            event,
            outcome=outcome,
            processed_at=self._clock(),
            plan=plan,
            close_status=CLOSE_STATUS_BY_OUTCOME.get(outcome),
            detail="dry run: nothing was sent to Close" if outcome == "dry_run" else "",
        )
        self.record(entry)

    def record(self, entry: HistoryEntry) -> bool:
        """Add the entry (one round trip); False, logged, when Redis could not take it."""
        key = HISTORY_PREFIX + entry.opportunity_id
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(key, entry.to_json())
        pipe.ltrim(key, 0, self.per_opportunity - 1)
        pipe.expire(key, self.ttl_sec)
        pipe.zadd(HISTORY_INDEX, {entry.opportunity_id: entry.processed_at})
        pipe.zremrangebyscore(HISTORY_INDEX, "-inf", entry.processed_at - self.ttl_sec)
        pipe.zcard(HISTORY_INDEX)
        try:
            tracked = pipe.execute()[-1]
            if tracked > self.max_opportunities:
                self._trim(tracked - self.max_opportunities)
        except redis.RedisError as error:
            log.warning("history_not_recorded", extra={"error": str(error)})
            return False
        return True

    def for_opportunity(self, opportunity_id: str, *, limit: int = 50) -> list[HistoryEntry]:
        """The opportunity's entries, newest first (entries that do not parse are skipped)."""
        raw = self._redis.lrange(HISTORY_PREFIX + opportunity_id, 0, max(limit, 1) - 1)
        entries = []
        for text in raw:
            try:
                entries.append(HistoryEntry.from_json(text))
            except (ValueError, TypeError):
                continue
        return entries

    def _trim(self, excess: int) -> None:
        """Forget the opportunities written longest ago, past the cap."""
        batch = max(excess, int(self.max_opportunities * TRIM_BATCH_FRACTION))
        oldest: Any = self._redis.zpopmin(HISTORY_INDEX, batch)  # [(member, score), ...]
        if oldest:
            self._redis.delete(*(HISTORY_PREFIX + _text(pair[0]) for pair in oldest))


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)
