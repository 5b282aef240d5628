"""How far a sweep run has got: where its next page starts and what it has counted.

A scheduled run saves its Progress after every page (its checkpoint, in Redis); a run
interrupted halfway starts again from there instead of from the first page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from service.core.events import Event
from service.processing.sweeps.paging import Cursor


@dataclass(frozen=True)
class PlannedUpdate:
    """One update a sweep planned: the deal, what would be sent and what the deal held."""

    opportunity_id: str
    update: dict[str, Any]
    current: dict[str, Any]

    @classmethod
    def of(cls, event: Event, update: Mapping[str, Any]) -> PlannedUpdate:
        """The update for the event's deal, with the values the deal held for those keys."""
        held = {key: event.data.get(_field(key)) for key in update}
        return cls(event.object_id, dict(update), held)


def _field(key: str) -> str:
    return key.removesuffix(".add").removesuffix(".remove")


@dataclass
class Tally:
    """What a run has counted so far."""

    listed: int = 0  # deals read from Close
    matched: int = 0  # the rule fired for them
    to_update: int = 0  # matched, and something to write: a job was queued (or would be)
    already_correct: int = 0  # matched, but everything the rule writes already holds
    queued_before: int = 0  # of to_update: queued by an earlier attempt of this run
    unresolved: list[str] = field(default_factory=list)  # names Close's metadata lacks
    planned: list[PlannedUpdate] = field(default_factory=list)  # the first few updates


@dataclass(frozen=True)
class Progress:
    """A run's checkpoint: the next page's cursor, the total Close reported, the tally."""

    cursor: Cursor = field(default_factory=Cursor)
    total: int | None = None
    tally: Tally = field(default_factory=Tally)
    pages: int = 0
    done: bool = False
    page_size: int | None = None  # what Close serves a page, once it served fewer than asked

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as saved."""
        return {
            "cursor": self.cursor.to_dict(),
            "total": self.total,
            "tally": asdict(self.tally),
            "pages": self.pages,
            "done": self.done,
            "page_size": self.page_size,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Progress:
        """The progress a checkpoint holds."""
        tally = dict(raw.get("tally") or {})
        planned = [PlannedUpdate(**p) for p in tally.pop("planned", [])]
        return cls(
            cursor=Cursor.from_dict(raw.get("cursor") or {}),
            total=raw.get("total"),
            tally=Tally(**tally, planned=planned),
            pages=int(raw.get("pages") or 0),
            done=bool(raw.get("done")),
            page_size=raw.get("page_size") or None,  # absent from older checkpoints
        )
