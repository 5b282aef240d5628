"""Events by outcome and rules by firing, per hour, for the console's charts and counts.

    dk:activity:<hour>      hash, one per UTC hour (epoch // 3600): `outcome:<name>` and
                            `rule:<name>` -> count; expires ACTIVITY_KEEP_SEC after its hour
    dk:activity:last_fired  hash: rule name -> JSON {at, opportunity_id, event_id}

dk:stats holds the same counts since the beginning (for /metrics); the console needs them
over the last hour, day and week, which a running total cannot give. Written on the job's
final pipeline, so it costs no round trip: about 170 bytes an hour for a few outcomes and
rules, 8 days kept (36 KB for the week at 10 rules).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from service.core.events import Event
from service.core.rules import Plan

ACTIVITY_PREFIX = "dk:activity:"
LAST_FIRED_KEY = "dk:activity:last_fired"
HOUR_SEC = 3600
ACTIVITY_KEEP_SEC = 8 * 24 * HOUR_SEC  # a week of counts, and the hour being written


@dataclass(frozen=True)
class LastFired:
    """When a rule last fired, and on which deal."""

    at: float
    opportunity_id: str
    event_id: str


def hour_of(moment: float) -> int:
    return int(moment // HOUR_SEC)


class Activity:
    """Hourly counts of outcomes and firings, written with each finished job."""

    def __init__(self, connection: redis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self.connection = connection
        self.clock = clock

    def record_finished(
        self, pipe: Any, event: Event, plan: Plan | None, result: Mapping[str, Any]
    ) -> None:
        """A JobContext.finish_writers entry: on the job's final pipeline."""
        now = self.clock()
        key = f"{ACTIVITY_PREFIX}{hour_of(now)}"
        pipe.hincrby(key, f"outcome:{result.get('outcome', 'unknown')}", 1)
        fired = plan.fired if plan is not None else ()
        for rule in fired:
            pipe.hincrby(key, f"rule:{rule}", 1)
            last = {"at": now, "opportunity_id": event.object_id, "event_id": event.id}
            pipe.hset(LAST_FIRED_KEY, rule, json.dumps(last))
        pipe.expire(key, ACTIVITY_KEEP_SEC)

    def hours(self, count: int) -> list[tuple[int, dict[str, int]]]:
        """The last `count` hours, oldest first, as (hour, counts) with the current hour last."""
        now_hour = hour_of(self.clock())
        wanted = [now_hour - back for back in range(count - 1, -1, -1)]
        with self.connection.pipeline(transaction=False) as pipe:
            for hour in wanted:
                pipe.hgetall(f"{ACTIVITY_PREFIX}{hour}")
            found = pipe.execute()
        return [(hour, _counts(raw)) for hour, raw in zip(wanted, found, strict=True)]

    def rule_counts(self, hours: int) -> dict[str, int]:
        """Firings per rule over the last `hours` hours (the current one included)."""
        return self.rule_counts_over([hours])[0]

    def rule_counts_over(self, windows: Sequence[int]) -> list[dict[str, int]]:
        """Firings per rule over each window of the last hours (the current one included):
        one read of the longest window serves them all."""
        hours = self.hours(max(windows, default=0))
        found: list[dict[str, int]] = []
        for window in windows:
            totals: dict[str, int] = {}
            for _, counts in hours[-window:] if window > 0 else ():
                for name, value in counts.items():
                    if name.startswith("rule:"):
                        rule = name.removeprefix("rule:")
                        totals[rule] = totals.get(rule, 0) + value
            found.append(totals)
        return found

    def last_fired(self) -> dict[str, LastFired]:
        found: dict[str, LastFired] = {}
        for rule, raw in self.connection.hgetall(LAST_FIRED_KEY).items():
            try:
                entry = json.loads(raw)
                found[_text(rule)] = LastFired(
                    at=float(entry["at"]),
                    opportunity_id=str(entry["opportunity_id"]),
                    event_id=str(entry["event_id"]),
                )
            except (ValueError, KeyError, TypeError):
                continue  # written by another release: not worth failing a page for
        return found


def _counts(raw: Mapping[Any, Any]) -> dict[str, int]:
    return {_text(name): int(value) for name, value in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
