"""One event by its id, for `dealkeeper test --add-case` and the console's explain.

The event comes from Close's event log (`GET /event/{id}/`), or, when the log no longer has
it or shows it without its deal (a non-admin key, after an hour), from a job dealkeeper
still holds in Redis (queued, waiting for a retry, or parked). Reading Redis here looks
for the job's keys (adapters/keptevents.py): a one-off search on an explicit request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.adapters.close import CloseClient
from service.adapters.eventlog import get_event
from service.adapters.keptevents import KeptEvents
from service.adapters.metadata import fetch_metadata
from service.config.errors import CloseNotFoundError
from service.core.events import EnvelopeError, event_from_dict
from service.core.rules import Metadata

CLOSE_LOG = "Close's event log"
KEPT_JOB = "a job dealkeeper holds in Redis"


@dataclass(frozen=True)
class Found:
    """Close's event, where it came from, and Close's metadata (None without a key)."""

    raw: dict[str, Any]
    source: str
    metadata: Metadata | None


class EventNotFoundError(Exception):
    """Neither Close's log nor dealkeeper's Redis holds the event with its deal; the
    message says why and what to do."""


def find_event(
    event_id: str,
    *,
    client: CloseClient | None,
    kept: KeptEvents | None,
) -> Found:
    """The event from Close's log (through `client`; None: no CLOSE_API_KEY), else from the
    jobs in Redis (`kept`; None: no Redis to look in)."""
    raw, metadata, why = None, None, "CLOSE_API_KEY is not set"
    if client is not None:
        metadata = fetch_metadata(client)
        try:
            raw = get_event(client, event_id)
            why = "" if has_payload(raw) else "it came without its deal"
        except CloseNotFoundError:
            why = "Close has no such event (the event log keeps 30 days)"
    if raw is not None and not why:
        return Found(raw, CLOSE_LOG, metadata)
    held = kept.get(event_id) if kept is not None else None
    if held is not None:
        return Found(held, KEPT_JOB, metadata)
    raise EventNotFoundError(
        f"cannot read event {event_id}: {why}, and no job in dealkeeper's Redis holds it. "
        "Close's event log shows a non-admin key an event's deal only in its first hour: use "
        "an admin's CLOSE_API_KEY. dealkeeper keeps an event only while it is queued or parked"
    )


def has_payload(raw: dict[str, Any]) -> bool:
    """True when the event carries its deal (a non-admin key sees it only for an hour)."""
    try:
        return not event_from_dict(raw).payload_missing
    except EnvelopeError:
        return False
