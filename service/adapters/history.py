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
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from service.core.events import Event
from service.core.rules import Plan
from service.core.rules.evaluation.reasons import Reasons

log = logging.getLogger("dealkeeper.history")
HISTORY_PREFIX = "dk:history:"
HISTORY_INDEX = "dk:history-index"
HISTORY_TTL_SEC = 30 * 24 * 3600
HISTORY_PER_OPPORTUNITY = 100
HISTORY_MAX_OPPORTUNITIES = 100_000
# Past the cap, this share of the cap is forgotten at once, so trimming stays rare.
TRIM_BATCH_FRACTION = 0.01
# Why rules did not fire, kept for the console's deal page: only rules enabled and triggered
# by the event (the others' reason is the same for every event of its kind), in rule order,
# while they fit in HISTORY_REASONS_MAX_CHARS, so a big rules file costs an entry a bounded
# size (every entry is kept 30 days: docs/redis.md) and the worker a bounded number of
# explanations. The rest are counted; `dealkeeper explain EVENT_ID` tells them all.
HISTORY_REASONS_MAX = 12
HISTORY_REASONS_MAX_CHARS = 480
HISTORY_REASON_MAX_CHARS = 120
# A condition's place, " (rules/x.yaml:12:9)", at the end of a reason: the rule is named
# beside it, and a path repeated in every entry would cost more than the reason.
_PLACE = re.compile(r" \([^()]*:\d+:\d+\)$")
# KEYS[1]: the index; ARGV: the cap, the batch, the list key prefix. Pops the oldest
# opportunities past the cap (at least a batch) and deletes their lists.
_TRIM = """
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local oldest = redis.call('ZPOPMIN', KEYS[1], math.max(excess, tonumber(ARGV[2])))
for i = 1, #oldest, 2 do redis.call('DEL', ARGV[3] .. oldest[i]) end
return #oldest / 2
"""
# What Close answered, by job outcome: a PUT was sent for these only (4xx answers park the
# job before it finishes; other outcomes make no call). not_taken: a 200 that left some
# fields as they were.
# Fields to_json leaves out when empty (from_json gives them their defaults back).
OPTIONAL_FIELDS = ("not_fired", "not_fired_more")
CLOSE_STATUS_BY_OUTCOME = {"applied": 200, "not_taken": 200, "opportunity_gone": 404}


@dataclass(frozen=True)
class HistoryEntry:
    """One evaluated event: what fired, the update, and what Close answered."""

    event_id: str
    opportunity_id: str
    event_type: str  # "opportunity.updated"
    event_time: str  # ISO 8601: when the change happened in Close
    processed_at: float  # epoch seconds: when dealkeeper finished with it
    outcome: str  # applied, not_taken, dry_run, no_update, own_change, opportunity_gone, ...
    fired: list[str] = field(default_factory=list)
    update: dict[str, Any] = field(default_factory=dict)
    close_status: int | None = None  # HTTP status of the PUT; None when nothing was sent
    detail: str = ""
    # Rule -> why it did not fire, for rules enabled and triggered by the event (the first
    # HISTORY_REASONS_MAX of them, in rule order); entries written before it have none.
    not_fired: dict[str, str] = field(default_factory=dict)
    not_fired_more: int = 0  # considered rules past the cap, whose reason was not kept

    def to_json(self) -> str:
        """Compact JSON, as stored; the reasons left out when there are none."""
        data = asdict(self)
        for name in OPTIONAL_FIELDS:
            if not data[name]:
                del data[name]
        return json.dumps(data, separators=(",", ":"), default=str, sort_keys=True)

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
        **(_reasons(plan) if plan is not None and not ignored else {}),
    )


def _reasons(plan: Plan) -> dict[str, Any]:
    """HistoryEntry's not_fired and not_fired_more for the plan."""
    reasons = plan.reasons_not_fired
    names = reasons.considered() if isinstance(reasons, Reasons) else list(reasons)
    kept: dict[str, str] = {}
    room = HISTORY_REASONS_MAX_CHARS
    for name in names[:HISTORY_REASONS_MAX]:
        reason = _cut(reasons[name])
        room -= len(name) + len(reason)
        if room < 0:
            break
        kept[name] = reason
    return {"not_fired": kept, "not_fired_more": len(names) - len(kept)}


def _cut(text: str) -> str:
    text = _PLACE.sub("", text)
    limit = HISTORY_REASON_MAX_CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        self.record(self._entry_for(event, plan, result))

    def _entry_for(
        self, event: Event, plan: Plan | None, result: Mapping[str, Any]
    ) -> HistoryEntry:
        outcome = str(result.get("outcome", "unknown"))
        return history_entry(
            event,
            outcome=outcome,
            processed_at=self._clock(),
            plan=plan,
            close_status=CLOSE_STATUS_BY_OUTCOME.get(outcome),
            detail=_detail(outcome, result),
        )

    def record(self, entry: HistoryEntry, *, target: Any = None) -> bool:
        """Add the entry: on `target` (a job's final pipeline) when given, else in one round
        trip of its own; False, logged, when Redis could not take it."""
        if target is not None:
            self._add(target, entry)
            return True
        pipe = self._redis.pipeline(transaction=True)
        self._add(pipe, entry)
        try:
            pipe.execute()
        except redis.RedisError as error:
            log.warning("history_not_recorded", extra={"error": str(error)})
            return False
        return True

    def record_finished(
        self, pipe: Any, event: Event, plan: Plan | None, result: Mapping[str, Any]
    ) -> None:
        """A JobContext.finish_writers entry: on_job_finished, on the job's final pipeline."""
        self.record(self._entry_for(event, plan, result), target=pipe)

    def _add(self, pipe: Any, entry: HistoryEntry) -> None:
        key = HISTORY_PREFIX + entry.opportunity_id
        pipe.lpush(key, entry.to_json())
        pipe.ltrim(key, 0, self.per_opportunity - 1)
        pipe.expire(key, self.ttl_sec)
        pipe.zadd(HISTORY_INDEX, {entry.opportunity_id: entry.processed_at})
        pipe.zremrangebyscore(HISTORY_INDEX, "-inf", entry.processed_at - self.ttl_sec)
        batch = max(1, int(self.max_opportunities * TRIM_BATCH_FRACTION))
        # The cap is kept in the same round trip: past it, the opportunities written longest
        # ago are forgotten, a batch at a time, their lists with them.
        pipe.eval(_TRIM, 1, HISTORY_INDEX, self.max_opportunities, batch, HISTORY_PREFIX)

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


def _detail(outcome: str, result: Mapping[str, Any]) -> str:
    if outcome == "dry_run":
        return "dry run: nothing was sent to Close"
    missed = result.get("not_taken")
    if outcome == "not_taken" and isinstance(missed, list):
        return f"Close answered 200 without taking: {', '.join(map(str, missed))}"
    return ""


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)
