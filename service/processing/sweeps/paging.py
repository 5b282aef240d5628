"""Paging through a sweep's opportunities so that none is skipped while writes move them.

Close pages with `_skip`/`_limit`, and skipping by position over a set that changes as the
sweep's jobs write drops deals: a deal a write takes out of the filter (its `date_updated`
is new, its confidence no longer matches) moves every later one a place back, and the next
page starts one deal too late. So the pages are keyed instead. They are ordered by
`date_created`, which never changes, and each asks for the deals created at or after the
second of the last deal listed, passing over the ones already listed in that second.
`_skip` is used only inside a crowd of deals created in one second (a bulk import), and
then backs off by half a page, so deals leaving the crowd meanwhile cannot be skipped.

Close's maximum `_limit` varies by resource, so a page may hold fewer deals than asked:
only `has_more` tells the end, and the pages after a short one ask for what Close served
(the half-page overlap in a crowd is half of what Close serves).

A deal may be listed twice (across a resumed run, or inside a crowd); the dedupe of
`enqueue_event` queues it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.config.errors import DealkeeperError
from service.core.events import parse_close_time

# Close's /opportunity/ was seen to accept _limit=200; above that it answers 400.
PAGE_LIMIT = 200
ORDER_BY = "date_created"
CREATED_FROM = "date_created__gte"


class PagingError(ValueError):
    """Close listed something the paging cannot place (no id or date_created)."""


class PagingStalledError(PagingError, DealkeeperError):
    """Close said more deals follow, but its page listed none not listed before: asking
    again would get the same page, forever."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the second of the last deal listed, and the deals
    listed so far that were created in that second."""

    second: str | None = None  # ISO 8601 in UTC, whole seconds; None: the first page
    seen: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for a checkpoint."""
        return {"second": self.second, "seen": list(self.seen)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Cursor:
        """The cursor a checkpoint holds."""
        return cls(raw.get("second"), tuple(raw.get("seen") or ()))


def page_params(
    filters: Mapping[str, str], *, cursor: Cursor, limit: int, fields: str | None
) -> dict[str, str]:
    """The query for the page after `cursor`: the sweep's filters, ordered and keyed."""
    params = {**filters, "_order_by": ORDER_BY, "_limit": str(limit)}
    if fields is not None:
        params["_fields"] = fields
    if cursor.second is not None:
        params[CREATED_FROM] = _later(filters.get(CREATED_FROM), cursor.second)
        skip = len(cursor.seen) - limit // 2
        if skip > 0:
            params["_skip"] = str(skip)
    return params


def advance(cursor: Cursor, *, items: Sequence[Mapping[str, Any]]) -> tuple[list[Any], Cursor]:
    """The deals of a page not listed before, and the cursor after the page."""
    seen = set(cursor.seen)
    fresh = [item for item in items if _id(item) not in seen]
    if not items:
        return fresh, cursor
    last = second_of(items[-1])
    in_last = [_id(item) for item in items if second_of(item) == last]
    if last == cursor.second:  # the whole page fell in that second: a crowd
        return fresh, Cursor(last, (*cursor.seen, *(i for i in in_last if i not in seen)))
    return fresh, Cursor(last, tuple(dict.fromkeys(in_last)))


def second_of(item: Mapping[str, Any]) -> str:
    """The UTC second the deal was created in, as ISO 8601 (`2026-01-05T09:30:12+00:00`)."""
    try:
        created = parse_close_time(item.get("date_created"), what="date_created")
    except ValueError as error:
        raise PagingError(f"Close listed {_id(item)} without a usable date_created") from error
    return created.replace(microsecond=0).isoformat()


def _id(item: Mapping[str, Any]) -> str:
    found = item.get("id")
    if not isinstance(found, str) or not found:
        raise PagingError("Close listed an opportunity without an id")
    return found


def _later(bound: str | None, second: str) -> str:
    if bound is None:
        return second
    parse = parse_close_time
    return max(bound, second, key=lambda text: parse(text, what=CREATED_FROM))
