"""Runaway rules: a field of one opportunity that dealkeeper keeps rewriting is a loop.

Our own events are already ignored, but two rules (or a rule and another integration) can
still flip a field back and forth through other people's changes. Every write counts per
opportunity and field for an hour; past the limit the field is not written again and the
event is parked, naming the rules, for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from service.adapters.ownwrites import written_field

WINDOW_SEC = 3600
PREFIX = "dk:loop:"


class LoopGuard:
    """Counts our writes per opportunity and field over a one-hour window."""

    def __init__(self, connection: redis.Redis, *, max_writes_per_hour: int) -> None:
        self.connection = connection
        self.max_writes = max_writes_per_hour

    def exhausted(self, opportunity_id: str, keys: Iterable[str]) -> list[str]:
        """The fields of this update already written `max_writes` times this hour."""
        fields = sorted({written_field(k) for k in keys})
        counts = self.connection.mget([self._key(opportunity_id, f) for f in fields])
        return [f for f, n in zip(fields, counts, strict=True) if n and int(n) >= self.max_writes]

    def count(self, opportunity_id: str, keys: Iterable[str], *, target: Any = None) -> None:
        """Count one write of each field: on `target` (a job's final pipeline) when given,
        else in one round trip of its own."""
        if target is not None:
            self._count_on(target, opportunity_id, keys)
            return
        with self.connection.pipeline(transaction=False) as pipe:
            self._count_on(pipe, opportunity_id, keys)
            pipe.execute()

    def _count_on(self, pipe: Any, opportunity_id: str, keys: Iterable[str]) -> None:
        for field in sorted({written_field(k) for k in keys}):
            key = self._key(opportunity_id, field)
            # The window starts at the first write (SET NX EX: works on Redis 6 too).
            pipe.set(key, 0, ex=WINDOW_SEC, nx=True)
            pipe.incr(key)

    def _key(self, opportunity_id: str, field: str) -> str:
        return f"{PREFIX}{opportunity_id}:{field}"
