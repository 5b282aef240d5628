"""Counters and last-seen times kept in Redis, shared by every web and worker process.

Web and worker processes run on different machines on Heroku, so per-process counters
could not be summed by one scrape of /metrics; a Redis hash can.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

STATS_KEY = "dk:stats"
LAST_KEY = "dk:last"


@dataclass(frozen=True)
class Sample:
    """One counter value with its labels."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


def _field(name: str, labels: dict[str, str]) -> str:
    return json.dumps([name, sorted(labels.items())], separators=(",", ":"))


class Stats:
    """Increment counters and stamp times; read them back for /metrics and status."""

    def __init__(self, connection: redis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self.connection = connection
        self.clock = clock

    def incr(self, name: str, *, target: Any = None, amount: int = 1, **labels: str) -> None:
        """Add to a counter, on `target` (a pipeline) when given."""
        (target or self.connection).hincrby(STATS_KEY, _field(name, labels), amount)

    def mark(self, name: str, *, target: Any = None) -> None:
        """Remember when something last happened (e.g. last_webhook_at)."""
        (target or self.connection).hset(LAST_KEY, name, repr(self.clock()))

    def record_webhook(self, target: Any, *, outcome: str) -> None:
        self.incr("webhooks_total", target=target, outcome=outcome)
        self.mark("last_webhook_at", target=target)

    def samples(self) -> list[Sample]:
        """Every counter, sorted by name and labels."""
        found = []
        for field, value in self.connection.hgetall(STATS_KEY).items():
            name, labels = json.loads(field)
            found.append(Sample(name, tuple((k, v) for k, v in labels), float(value)))
        return sorted(found, key=lambda s: (s.name, s.labels))

    def last_times(self) -> dict[str, float]:
        return {
            _text(key): float(value) for key, value in self.connection.hgetall(LAST_KEY).items()
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
