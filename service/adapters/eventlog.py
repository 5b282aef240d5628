"""Close's event log (`GET /event/`), read for catch-up, backtests and `explain`.

Close keeps 30 days of events, lists them newest first, pages with `_cursor` (repeating
the same filters but not `date_updated`), caps `_limit` at 50, and only allows some filter
combinations: `object_type` needs an `action` beside it, so each action is read on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from service.adapters.close import JSONAPI, path_segment
from service.config.errors import CloseNotFoundError
from service.core.events import parse_close_time

EVENT_LOG_RETENTION = timedelta(days=30)
EVENT_LOG_PAGE_SIZE = 50
OPPORTUNITY_ACTIONS = ("created", "updated", "deleted")


def iter_events(
    client: JSONAPI,
    *,
    since: datetime,
    object_type: str = "opportunity",
    action: str,
    until: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Every event of one object type and action updated at or after `since`, newest first."""
    first = {
        "object_type": object_type,
        "action": action,
        "date_updated__gte": _close_time(since),
        "_limit": str(EVENT_LOG_PAGE_SIZE),
    }
    if until is not None:
        first["date_updated__lt"] = _close_time(until)
    params = first
    while True:
        page = client.request_json("GET", "event/", params=params)
        yield from (e for e in page.get("data") or () if isinstance(e, dict))
        cursor = page.get("cursor_next")
        if not cursor:
            return
        # Close: repeat the filters with the cursor, all but date_updated.
        params = {k: v for k, v in first.items() if not k.startswith("date_updated")}
        params["_cursor"] = str(cursor)


def first_page(
    client: JSONAPI,
    *,
    since: datetime,
    until: datetime,
    action: str = "updated",
    object_type: str = "opportunity",
) -> list[dict[str, Any]]:
    """One page (at most 50, newest first) of the events updated in [since, until): enough
    to see whether the log can be read that far back, and with what."""
    params = {
        "object_type": object_type,
        "action": action,
        "date_updated__gte": _close_time(since),
        "date_updated__lt": _close_time(until),
        "_limit": str(EVENT_LOG_PAGE_SIZE),
    }
    page = client.request_json("GET", "event/", params=params)
    return [e for e in page.get("data") or () if isinstance(e, dict)]


def read_events(
    client: JSONAPI,
    *,
    since: datetime,
    until: datetime | None = None,
    object_type: str = "opportunity",
    actions: Iterable[str] = OPPORTUNITY_ACTIONS,
) -> list[dict[str, Any]]:
    """Events of every action, oldest first by creation (the order they happened in)."""
    found = {
        event["id"]: event
        for action in actions
        for event in iter_events(
            client, since=since, until=until, object_type=object_type, action=action
        )
        if isinstance(event.get("id"), str)
    }
    return sorted(found.values(), key=_created_key)


@dataclass(frozen=True)
class BoundedRead:
    """What a bounded read of the log found, and whether it reached `since` for every
    action (False: the budget ran out, and the older events were not read)."""

    events: list[dict[str, Any]]
    complete: bool


def read_events_bounded(
    client: JSONAPI,
    *,
    since: datetime,
    max_events: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    actions: Iterable[str] = OPPORTUNITY_ACTIONS,
) -> BoundedRead:
    """read_events, stopping at `max_events` events or once `clock()` passes `deadline`
    (checked before each page): for a reader that must answer soon, such as a web page.
    Each action gets an equal share of the events, newest first."""
    chosen = tuple(actions)
    share = max(max_events // max(len(chosen), 1), 1)
    found: dict[str, dict[str, Any]] = {}
    complete = True
    for action in chosen:
        taken = 0
        pages = _pages(client, since=since, action=action)
        while taken < share:
            if clock() >= deadline:
                complete = False
                break
            page, more = next(pages, ([], False))
            room = share - taken
            for event in page[:room]:
                if isinstance(event.get("id"), str):
                    found[event["id"]] = event
            taken += min(len(page), room)
            if len(page) > room or (taken >= share and more):
                complete = False
            if not more:
                break
    return BoundedRead(sorted(found.values(), key=_created_key), complete)


def _pages(
    client: JSONAPI, *, since: datetime, action: str
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """The pages of one action's events (as iter_events asks for them), one at a time, each
    with whether more follow."""
    first = {
        "object_type": "opportunity",
        "action": action,
        "date_updated__gte": _close_time(since),
        "_limit": str(EVENT_LOG_PAGE_SIZE),
    }
    params = first
    while True:
        page = client.request_json("GET", "event/", params=params)
        cursor = page.get("cursor_next")
        yield [e for e in page.get("data") or () if isinstance(e, dict)], bool(cursor)
        if not cursor:
            return
        params = {k: v for k, v in first.items() if not k.startswith("date_updated")}
        params["_cursor"] = str(cursor)


def event_path(event_id: str) -> str:
    """`event/<id>/`, the id one segment (an id typed at `dealkeeper test --add-case`)."""
    return f"event/{path_segment(event_id)}/"


def get_event(client: JSONAPI, event_id: str) -> dict[str, Any]:
    """One event by id (CloseNotFoundError when it is older than the retention or unknown)."""
    try:
        path = event_path(event_id)
    except ValueError as error:  # `.`, `..` or nothing: no event has that id
        raise CloseNotFoundError(
            method="GET", path="event/", status=None, reason=str(error)
        ) from None
    return client.request_json("GET", path)


def earliest_available(now: datetime) -> datetime:
    """The oldest moment the event log still covers."""
    return now - EVENT_LOG_RETENTION


def _created_key(event: Mapping[str, Any]) -> tuple[datetime, str]:
    try:
        moment = parse_close_time(event.get("date_created"), what="date_created")
    except ValueError:
        moment = datetime.min.replace(tzinfo=UTC)
    return moment, str(event.get("id"))


def _close_time(moment: datetime) -> str:
    """ISO 8601 in UTC, as Close's date filters take it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
