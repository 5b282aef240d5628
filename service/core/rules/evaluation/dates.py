"""Dates for rules: `today`-style expressions, durations, time zones, date-valued fields.

The moment always comes from the event; nothing here reads the clock.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from service.core.rules.model import DateExpr

_DATE_EXPR = re.compile(r"today(?:([+-])([0-9]+)([dw]))?")
_DURATION = re.compile(r"([0-9]+)([mhdw])")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ].+")
_UNIT_SEC = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_DAYS = {"d": 1, "w": 7}

DATE_EXPR_HINT = "today, today+Nd, today-Nd, today+Nw or today-Nw (no spaces)"
DATE_OF_HINT = "date_of(FIELD) or date_of(FIELD, FALLBACK, ...) with date fields"
_DATE_OF = re.compile(r"\s*date_of\s*\((.*)\)\s*")


def parse_date_expr(text: str) -> DateExpr | None:
    """`today`, `today+7d`, `today-1d`, `today+2w` as a DateExpr; anything else None."""
    found = _DATE_EXPR.fullmatch(text)
    if found is None:
        return None
    sign, amount, unit = found.groups()
    if sign is None:
        return DateExpr(offset_days=0, text=text)
    days = int(amount) * _UNIT_DAYS[unit]
    return DateExpr(offset_days=days if sign == "+" else -days, text=text)


def parse_date_of(text: str) -> tuple[str, ...] | None:
    """The field names of `date_of(a, b)`; None when the text is not of that form."""
    found = _DATE_OF.fullmatch(text)
    if found is None:
        return None
    names = tuple(name.strip() for name in found.group(1).split(","))
    return names if all(names) else None


def is_date_of_attempt(text: str) -> bool:
    """True for text meant as `date_of(...)`, so a typo is reported instead of written."""
    return text.strip().startswith("date_of")


def is_date_expr_attempt(text: str) -> bool:
    """True for text meant as a date expression, so a typo is reported instead of kept."""
    return re.fullmatch(r"\s*today\s*([+-]\s*\w*\s*)?", text) is not None


def parse_duration(text: str) -> int | None:
    """`90d`, `12h`, `30m`, `2w` in seconds; anything else None."""
    found = _DURATION.fullmatch(text)
    if found is None:
        return None
    return int(found.group(1)) * _UNIT_SEC[found.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest `Nw`/`Nd`/`Nh`/`Nm` spelling of a whole number of minutes."""
    for unit in ("w", "d", "h"):
        if seconds % _UNIT_SEC[unit] == 0:
            return f"{seconds // _UNIT_SEC[unit]}{unit}"
    return f"{seconds // 60}m"


def is_known_timezone(name: str) -> bool:
    """True when zoneinfo knows the IANA name."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.cache
def known_timezones() -> tuple[str, ...]:
    """Every IANA name zoneinfo knows, for suggestions (read once: it lists tzdata)."""
    return tuple(sorted(available_timezones()))


def local_date(moment: datetime, tz: str) -> date:
    """The calendar date in `tz` at `moment` (a naive moment is UTC)."""
    return _aware(moment).astimezone(ZoneInfo(tz)).date()


def utc_offset_hours(moment: datetime, tz: str) -> float:
    """`tz`'s offset from UTC at `moment`, DST included: -5.0, -4.0, 5.5, -2.5."""
    offset = _aware(moment).astimezone(ZoneInfo(tz)).utcoffset()
    return 0.0 if offset is None else offset.total_seconds() / 3600


def resolve_date_expr(expr: DateExpr, *, moment: datetime, tz: str) -> date:
    """The date `expr` names, counted from the local date of `moment` in `tz`."""
    return local_date(moment, tz) + timedelta(days=expr.offset_days)


def utc_iso(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601 with `+00:00`, as `now` writes it."""
    return _aware(moment).astimezone(UTC).isoformat()


def parse_date_value(value: Any) -> date | datetime | None:
    """A field value as a date ("2026-11-27") or an aware datetime; None if it is neither."""
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _DATE_TEXT.fullmatch(text):
            return date.fromisoformat(text)
        if _DATETIME_TEXT.fullmatch(text):
            return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None
    return None


def as_moment(value: date | datetime, tz: str) -> datetime:
    """A datetime as is; a date as its midnight in `tz`."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=ZoneInfo(tz))


def as_local_date(value: date | datetime, tz: str) -> date:
    """A date as is; a datetime as its calendar date in `tz`."""
    if isinstance(value, datetime):
        return local_date(value, tz)
    return value


def _aware(moment: datetime) -> datetime:
    # Close writes naive timestamps in some examples; they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
