"""Query parameters as Close reads them: offset paging, exact and `__in` filters, date ranges.

Shared by the fake's list endpoints (opportunities, statuses, custom fields, the event log).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 200  # _limit=200 was accepted by /opportunity/ in recordings; above it, 400

CUSTOM = "custom"  # in `_fields`: every custom field; `custom.cf_X`: that one

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]

_COMPARATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


class BadQueryError(ValueError):
    """A request Close would answer 400 with `{"error": message}`."""


def int_param(args: Mapping[str, str], name: str, *, default: int, maximum: int) -> int:
    """A non-negative integer parameter no larger than `maximum`."""
    raw = args.get(name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        raise BadQueryError(f"{name} must be an integer, got {raw!r}") from None
    if not 0 <= number <= maximum:
        raise BadQueryError(f"{name} must be between 0 and {maximum}, got {number}")
    return number


def paginate(
    items: Sequence[Item], args: Mapping[str, str], *, cap: int | None = None
) -> dict[str, Any]:
    """`{data, has_more}` for `_skip`/`_limit`; `cap`: serve at most that many a page,
    whatever `_limit` asks (`has_more` still tells whether more follow)."""
    skip = int_param(args, "_skip", default=0, maximum=10**9)
    limit = int_param(args, "_limit", default=DEFAULT_PAGE_LIMIT, maximum=MAX_PAGE_LIMIT)
    served = limit if cap is None else min(limit, cap)
    return {"data": list(items[skip : skip + served]), "has_more": skip + served < len(items)}


def build_filters(
    args: Mapping[str, str],
    *,
    exact: Collection[str],
    dates: Collection[str],
    allow_in: bool,
    tz: timezone = UTC,
) -> list[Predicate]:
    """One predicate per recognised parameter; others are ignored, as Close ignores them.

    `tz` (from x-tz-offset) places a date-only bound on datetime fields, e.g. midnight.
    """
    predicates: list[Predicate] = []
    for name, raw in args.items():
        field, _, suffix = name.partition("__")
        if field in exact and (suffix == "" or (suffix == "in" and allow_in)):
            predicates.append(_membership(field, set(raw.split(",")) if suffix else {raw}))
        elif field in dates and suffix in _COMPARATORS:
            predicates.append(_comparison(field, _COMPARATORS[suffix], _moment(raw, field, tz)))
    return predicates


def sort_items(items: list[dict[str, Any]], order_by: str | None) -> list[dict[str, Any]]:
    """`_order_by=a,-b`: stable sorts from the last key to the first; nulls last."""
    for key in reversed([k.strip() for k in (order_by or "").split(",") if k.strip()]):
        field, descending = key.lstrip("-"), key.startswith("-")
        present = [i for i in items if i.get(field) is not None]
        present.sort(key=lambda i: i[field], reverse=descending)
        items = present + [i for i in items if i.get(field) is None]
    return items


def only_fields(
    item: Item, fields_param: str | None, *, custom_by_fields: bool = True
) -> dict[str, Any]:
    """The item cut down to `_fields` (`custom` keeps every custom.* key, `custom.cf_X`
    that one); `custom_by_fields` False: those two forms name nothing, so the item comes
    without custom fields."""
    if not fields_param:
        return dict(item)
    wanted = {f.strip() for f in fields_param.split(",")}
    if not custom_by_fields:
        wanted = {f for f in wanted if f != CUSTOM and not f.startswith(CUSTOM + ".")}
    return {
        k: v
        for k, v in item.items()
        if k in wanted or (CUSTOM in wanted and k.startswith(CUSTOM + "."))
    }


def _membership(field: str, allowed: set[str]) -> Predicate:
    return lambda item: str(item.get(field)) in allowed


def _comparison(
    field: str, compare: Callable[[Any, Any], bool], bound: date | datetime
) -> Predicate:
    def holds(item: Item) -> bool:
        raw = item.get(field)
        return raw is not None and compare(_moment(str(raw), field, UTC), bound)

    return holds


def _moment(text: str, field: str, tz: timezone) -> date | datetime:
    """date_won compares as a date; the others as aware datetimes (naive = in `tz`)."""
    try:
        if field == "date_won":
            return date.fromisoformat(text[:10])
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQueryError(f"{field} needs an ISO 8601 date, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def offset_zone(hours: float | None) -> timezone:
    """The fixed zone of an x-tz-offset value (UTC without one)."""
    return UTC if hours is None else timezone(timedelta(hours=hours))
