"""Close's events: how the fake writes them and how `GET event/` reads them back.

An event is shaped as close-api-notes.md sections 1 and 12 describe; the log lists newest
first (by date_updated) and pages with opaque cursors: `cursor_next` leads to older events,
`cursor_previous` to newer ones. A non-admin key reads `data` and `previous_data` only of
events less than an hour old, as Close's Events page says.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fakeclose.queries import BadQueryError, build_filters, int_param

EVENT_PAGE_LIMIT = 50  # Close's default and maximum
EVENT_FILTERS = ("object_type", "object_id", "action", "lead_id", "user_id", "request_id")
# Close: "For non-admins, this field is only returned for events less than one hour old."
NON_ADMIN_DATA_AGE = timedelta(hours=1)

_Key = tuple[str, int]  # (date_updated, position in the log): a total order


def make_event(
    *,
    event_id: str,
    when: datetime,
    organization_id: str,
    actor: Mapping[str, Any],
    action: str,
    object_id: str,
    lead_id: str | None,
    data: Mapping[str, Any] | None,
    previous_data: Mapping[str, Any],
    changed_fields: Sequence[str],
) -> dict[str, Any]:
    """One event; `actor` holds user_id, api_key_id, request_id, request_method, request_path."""
    stamp = when.replace(tzinfo=None).isoformat(timespec="microseconds")  # Close: no offset
    return {
        "id": event_id,
        "date_created": stamp,
        "date_updated": stamp,
        "organization_id": organization_id,
        "user_id": actor["user_id"],
        "api_key_id": actor["api_key_id"],
        "request_id": actor["request_id"],
        "object_type": "opportunity",
        "object_id": object_id,
        "lead_id": lead_id,
        "action": action,
        "changed_fields": list(changed_fields),
        "previous_data": dict(previous_data),
        "data": None if data is None else dict(data),
        "meta": {
            "request_method": actor["request_method"],
            "request_path": actor["request_path"],
        },
    }


def as_seen_by(event: Mapping[str, Any], *, admin: bool, now: datetime) -> dict[str, Any]:
    """The event as a key reads it from the log: to a non-admin key, an event an hour old or
    more comes with `data` and `previous_data` null. Its age counts from date_created (Close
    does not say which of its times it counts from)."""
    shown = dict(event)
    created = datetime.fromisoformat(str(event["date_created"])).replace(tzinfo=UTC)
    if not admin and now - created >= NON_ADMIN_DATA_AGE:
        shown["data"] = shown["previous_data"] = None
    return shown


def list_events(events: Sequence[Mapping[str, Any]], args: Mapping[str, str]) -> dict[str, Any]:
    """`{data, cursor_next, cursor_previous}` for `GET event/`."""
    limit = int_param(args, "_limit", default=EVENT_PAGE_LIMIT, maximum=10**6)
    limit = max(min(limit, EVENT_PAGE_LIMIT), 1)
    filters = build_filters(args, exact=EVENT_FILTERS, dates=("date_updated",), allow_in=False)
    matching = sorted(
        (((e["date_updated"], position), e) for position, e in enumerate(events)),
        key=lambda pair: pair[0],
        reverse=True,
    )
    matching = [(key, e) for key, e in matching if all(f(e) for f in filters)]
    window = _window(matching, _decode_cursor(args.get("_cursor")), limit)
    keys = [key for key, _ in matching]
    return {
        "data": [dict(e) for _, e in window],
        "cursor_next": _cursor("next", window[-1][0])
        if window and window[-1][0] > keys[-1]
        else None,
        "cursor_previous": _cursor("prev", window[0][0])
        if window and window[0][0] < keys[0]
        else None,
    }


def _window(
    matching: list[tuple[_Key, Mapping[str, Any]]], cursor: tuple[str, _Key] | None, limit: int
) -> list[tuple[_Key, Mapping[str, Any]]]:
    if cursor is None:
        return matching[:limit]
    direction, mark = cursor
    if direction == "next":
        return [pair for pair in matching if pair[0] < mark][:limit]
    newer = [pair for pair in matching if pair[0] > mark]
    return newer[-limit:]  # the newer events closest to the mark


def _cursor(direction: str, key: _Key) -> str:
    raw = json.dumps([direction, key[0], key[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str | None) -> tuple[str, _Key] | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        direction, stamp, position = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise BadQueryError("_cursor is not a cursor this API returned") from None
    if direction not in ("next", "prev"):
        raise BadQueryError("_cursor is not a cursor this API returned")
    return direction, (str(stamp), int(position))
