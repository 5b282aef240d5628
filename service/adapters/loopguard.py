"""Runaway rules: a field of one opportunity that dealkeeper keeps rewriting is a loop.

Our own events are already ignored, but two rules (or a rule and another integration) can
still flip a field back and forth through other people's changes. Every write counts per
opportunity and field for an hour; past the limit the field is not written again and the
event is parked, naming the rules, for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from service.core.reconcile import written_field

WINDOW_SEC = 3600
PREFIX = "dk:loop:"


class LoopGuard:
    """Counts our writes per opportunity and field over a one-hour window."""

    def __init__(self, connection: redis.Redis, *, max_writes_per_hour: int) -> None:
        self.connection = connection
        self.max_writes = max_writes_per_hour

    def exhausted(
        self, opportunity_id: str, keys: Iterable[str], *, known: Mapping[str, int] | None = None
    ) -> list[str]:
        """The fields of this update already written `max_writes` times this hour.

        `known`: counts already read (`read_on`, under the opportunity's lock); only fields
        missing from it cost a round trip.
        """
        counts = dict(known or {})
        missing = [f for f in _fields(keys) if f not in counts]
        if missing:
            found = self.connection.mget([self._key(opportunity_id, f) for f in missing])
            counts.update(zip(missing, (_count(n) for n in found), strict=True))
        return [f for f in _fields(keys) if counts[f] >= self.max_writes]

    def read_on(self, pipe: Any, opportunity_id: str, keys: Iterable[str]) -> None:
        """Queue the read of the counts of the fields `keys` write (one or more) on `pipe`:
        one reply, for `counts_from`."""
        pipe.mget([self._key(opportunity_id, f) for f in _fields(keys)])

    @staticmethod
    def counts_from(keys: Iterable[str], reply: Any) -> dict[str, int]:
        """The counts `read_on` asked for ({} when Redis refused the read: asked again)."""
        if not isinstance(reply, list):
            return {}
        return {f: _count(n) for f, n in zip(_fields(keys), reply, strict=True)}

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
        for field in _fields(keys):
            key = self._key(opportunity_id, field)
            # The window starts at the first write (SET NX EX: works on Redis 6 too).
            pipe.set(key, 0, ex=WINDOW_SEC, nx=True)
            pipe.incr(key)

    def _key(self, opportunity_id: str, field: str) -> str:
        return f"{PREFIX}{opportunity_id}:{field}"


def _fields(keys: Iterable[str]) -> list[str]:
    """The opportunity fields an update writes, sorted."""
    return sorted({written_field(k) for k in keys})


def _count(value: bytes | str | None) -> int:
    return int(value) if value else 0
