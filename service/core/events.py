"""The Close event as dealkeeper reads it.

Only the keys that rules and jobs read are kept, so unrelated changes to Close's payloads
cannot break parsing. An Event is also what a job carries through Redis (as plain JSON).

An event can come without its object: Close's event log gives a non-admin API key `data`
and `previous_data` only for events less than an hour old. Such an event is marked
`payload_missing`, never taken for one about an empty opportunity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

EVENT_NAMES = ("opportunity.created", "opportunity.updated", "opportunity.deleted")
# A sweep makes one event per opportunity it lists, with this action and the sweep's name.
SWEPT = "swept"
SWEEP_TRIGGER_PREFIX = "sweep:"
# Actions only dealkeeper makes: a webhook carrying one is forged or broken, never Close's.
INTERNAL_ACTIONS = frozenset({SWEPT})
# Close's object ids: a lowercase type prefix, `_`, then base62 (`oppo_8eB77gAdf8FMy6Gs...`).
# The length varies, so it is not checked; the characters are. `_` is let through after the
# prefix (harmless in a URL, and test ids use it), while `.`, `/`, `%` and the rest, which
# could take an id out of its path segment in a Close URL, are not.
CLOSE_ID = re.compile(r"[a-z][a-z0-9]*_[A-Za-z0-9_]+")
# The moments an event may be from (see parse_close_time): wide enough for any clock, far
# enough inside Python's calendar for a rule's `today+Nd` in any time zone.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class EnvelopeError(ValueError):
    """The JSON is not a Close event envelope; the message says what is missing."""


@dataclass(frozen=True)
class Event:
    """One Close event about one object."""

    id: str
    object_type: str
    action: str
    object_id: str
    date_created: datetime  # aware, UTC: the moment the change happened
    date_updated: datetime  # aware, UTC: changes when Close consolidates events
    data: Mapping[str, Any] = field(default_factory=dict)
    previous_data: Mapping[str, Any] = field(default_factory=dict)
    changed_fields: tuple[str, ...] = ()
    api_key_id: str | None = None
    user_id: str | None = None
    lead_id: str | None = None
    request_id: str | None = None
    subscription_id: str | None = None
    sweep: str | None = None  # the sweep rule whose run made this event (action "swept")
    # The object's key (payload_key) was null or absent: its data and previous_data are
    # empty because nobody knows them, not because the opportunity is empty.
    payload_missing: bool = False
    organization_id: str | None = None  # the Close organization the object belongs to

    @property
    def name(self) -> str:
        """`opportunity.updated` and the like, as rules name triggers."""
        return f"{self.object_type}.{self.action}"

    @property
    def trigger(self) -> str:
        """The trigger rules must name to run on this event: its name, or for a sweep's
        event `sweep:<the sweep rule's name>`, which no rule on Close's events names."""
        if self.action == SWEPT:
            return f"{SWEEP_TRIGGER_PREFIX}{self.sweep}"
        return self.name

    @property
    def state(self) -> Mapping[str, Any]:
        """The object as the event leaves it (a deleted object: as it was)."""
        if self.action == "deleted" and not self.data:
            return self.previous_data
        return self.data

    @property
    def payload_key(self) -> str:
        """The key that carries the object: `previous_data` for a deleted one, else `data`."""
        return _payload_key(self.action)

    @property
    def dedupe_key(self) -> str:
        """Identifies one delivery's content: Close may resend an event or consolidate it."""
        stamp = self.date_updated.strftime("%Y%m%dT%H%M%S%f")
        return f"{self.id}-{stamp}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe form, as a job carries it."""
        return {
            "id": self.id,
            "object_type": self.object_type,
            "action": self.action,
            "object_id": self.object_id,
            "date_created": self.date_created.isoformat(),
            "date_updated": self.date_updated.isoformat(),
            "data": dict(self.data),
            "previous_data": dict(self.previous_data),
            # A missing object stays missing (null) through a job's copy of the event.
            **({self.payload_key: None} if self.payload_missing else {}),
            "changed_fields": list(self.changed_fields),
            "api_key_id": self.api_key_id,
            "user_id": self.user_id,
            "lead_id": self.lead_id,
            "request_id": self.request_id,
            "subscription_id": self.subscription_id,
            **({"sweep": self.sweep} if self.sweep is not None else {}),
            **({"organization_id": self.organization_id} if self.organization_id else {}),
        }


def parse_close_time(value: Any, *, what: str) -> datetime:
    """Close's timestamps; a value without an offset is UTC (as in Close's event examples).

    With or without fractions of a second, `Z` or any offset. A moment outside
    EARLIEST..LATEST is refused: no event of Close's is from then (its event log keeps 30
    days), and every date worked out from it (in a rule's time zone, `today+7d`) must fit
    Python's calendar, which ends at the years 1 and 9999."""
    if not isinstance(value, str):
        raise EnvelopeError(f"{what} must be an ISO 8601 timestamp, got {_shown(value)}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise EnvelopeError(f"{what} must be an ISO 8601 timestamp, got {_shown(value)}") from None
    if not EARLIEST <= moment < LATEST:
        years = f"{EARLIEST.year} to {LATEST.year - 1}"
        raise EnvelopeError(f"{what} must be a moment from {years}, got {_shown(value)}")
    return moment


def _shown(value: Any) -> str:
    """A value as an error message quotes it: cut, since a body may hold megabytes."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"


def event_from_envelope(body: Any) -> Event:
    """The Event in a webhook body `{"subscription_id": ..., "event": {...}}`."""
    if not isinstance(body, Mapping):
        raise EnvelopeError("body must be a JSON object with an 'event' object")
    raw = body.get("event")
    if not isinstance(raw, Mapping):
        raise EnvelopeError("missing 'event' object")
    subscription_id = body.get("subscription_id")
    return event_from_dict(raw, subscription_id=_optional_str(subscription_id, "subscription_id"))


def event_from_delivery(body: Any) -> Event:
    """The Event in a webhook delivery: an envelope, refused where it holds what Close never
    sends. (Rule tests and `explain` read envelopes too, and may hold a sweep's event.)"""
    return _as_delivered(event_from_envelope(body))


def is_close_id(value: str) -> bool:
    """Whether `value` has the shape of a Close object id."""
    return CLOSE_ID.fullmatch(value) is not None


def _as_delivered(event: Event) -> Event:
    """A webhook's event, refused where Close never sends what it holds."""
    if event.action in INTERNAL_ACTIONS:
        raise EnvelopeError(
            f"event.action {event.action!r} is dealkeeper's own; Close never sends it"
        )
    # Only opportunity events are queued and turned into URLs; another object's event is
    # ignored, and a wrong guess about its id shape would turn Close's deliveries away.
    if event.object_type == "opportunity" and not is_close_id(event.object_id):
        raise EnvelopeError(
            f"event.object_id must be a Close object id such as oppo_ followed by letters "
            f"and digits, got {event.object_id[:40]!r}"
        )
    # Only a sweep names one; the webhook's events are never a sweep's.
    return replace(event, sweep=None) if event.sweep is not None else event


def event_from_dict(raw: Mapping[str, Any], *, subscription_id: str | None = None) -> Event:
    """An Event from Close's event object (webhook `event`, event log item or job data)."""
    if not isinstance(raw, Mapping):
        raise EnvelopeError("event must be a JSON object")
    created = parse_close_time(raw.get("date_created"), what="event.date_created")
    updated_raw = raw.get("date_updated")
    updated = (
        created if updated_raw is None else parse_close_time(updated_raw, what="event.date_updated")
    )
    action = _required_str(raw, "action")
    return Event(
        id=_required_str(raw, "id"),
        object_type=_required_str(raw, "object_type"),
        action=action,
        object_id=_required_str(raw, "object_id"),
        date_created=created,
        date_updated=updated,
        data=_mapping(raw.get("data"), "data"),
        previous_data=_mapping(raw.get("previous_data"), "previous_data"),
        changed_fields=_changed_fields(raw.get("changed_fields")),
        api_key_id=_optional_str(raw.get("api_key_id"), "api_key_id"),
        user_id=_optional_str(raw.get("user_id"), "user_id"),
        lead_id=_optional_str(raw.get("lead_id"), "lead_id"),
        request_id=_optional_str(raw.get("request_id"), "request_id"),
        subscription_id=subscription_id
        or _optional_str(raw.get("subscription_id"), "subscription_id"),
        sweep=_sweep(raw),
        payload_missing=raw.get(_payload_key(action)) is None,
        organization_id=_optional_str(raw.get("organization_id"), "organization_id"),
    )


def require_payload(event: Event) -> Event:
    """The event, when it carries its object; EnvelopeError saying why not otherwise (rules
    judging it would see an empty opportunity)."""
    if event.payload_missing:
        raise EnvelopeError(
            f"event {event.id} came without its {event.payload_key} (Close's event log shows "
            "it to a non-admin API key only for an hour); rules cannot judge an opportunity "
            "that was not sent"
        )
    return event


def swept_event(opportunity: Mapping[str, Any], *, sweep: str, moment: datetime) -> Event:
    """The event a sweep makes of one listed opportunity: `moment` (the run's scheduled
    time) is when it happened, so a resumed run makes the very same event again."""
    object_id = str(opportunity["id"])
    return Event(
        id=f"sweep-{sweep}-{object_id}",
        object_type="opportunity",
        action=SWEPT,
        object_id=object_id,
        date_created=moment,
        date_updated=moment,
        data=dict(opportunity),
        lead_id=_optional_str(opportunity.get("lead_id"), "lead_id"),
        sweep=sweep,
    )


def _payload_key(action: str) -> str:
    # Close: data is "null for delete events"; previous_data then holds the whole object.
    return "previous_data" if action == "deleted" else "data"


def _sweep(raw: Mapping[str, Any]) -> str | None:
    sweep = _optional_str(raw.get("sweep"), "sweep")
    if raw.get("action") == SWEPT and not sweep:
        raise EnvelopeError("a swept event needs sweep: the name of the sweep rule that made it")
    return sweep


def _required_str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"event.{key} must be a non-empty string")
    return value


def _optional_str(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise EnvelopeError(f"event.{key} must be a string or null")


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EnvelopeError(f"event.{key} must be an object or null")
    return dict(value)


def _changed_fields(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise EnvelopeError("event.changed_fields must be a list of strings")
    return tuple(value)
