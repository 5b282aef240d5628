"""Whose turn it is: an event of an opportunity waits only for the older events of that
opportunity that are queued or running. Pure; service/adapters/ordering.py reads the list
and the jobs' statuses from Redis.

A parked (failed) event waits for a person, and one scheduled for a retry waits for its
time: neither holds the newer events back. The stale-write check (service/core/reconcile.py)
keeps a later run of theirs from undoing what a newer event wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WAITING_FOR = (b"queued", b"started")
ENDED = (None, b"finished", b"failed", b"canceled", b"stopped")


@dataclass(frozen=True)
class Older:
    """The older events listed for an opportunity, by what their jobs are doing."""

    waiting: dict[str, bytes]  # job id -> status: these go first
    ended: list[str]  # listed still, but done: to strike off the list


def others(members: Iterable[bytes | str], job_id: str) -> list[str]:
    """The job ids among `members` other than this job's own."""
    return [m for m in map(_text, members) if m != job_id]


def sort_older(statuses: Mapping[str, bytes | None]) -> Older:
    """Which of the older events (job id -> its job's status, None when the job is gone)
    this one waits for, and which have ended. A status of neither kind (scheduled,
    deferred) neither waits nor is struck off."""
    waiting = {m: s for m, s in statuses.items() if s is not None and s in WAITING_FOR}
    return Older(waiting, [m for m, s in statuses.items() if s in ENDED])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
