"""Five-field cron schedules (`0 6 * * 1-5`) in a time zone: parsing and the times they name.

Written here rather than taken from croniter (which RQ happens to install): the rule
engine's core stays stdlib-only, `validate` needs each mistake with its column and a "did
you mean", and the daylight-saving behaviour below is ours to state and test:

- a local time the clock skips in spring runs when the clock has moved on (02:30 on the
  change day in New York runs at 03:30 EDT, the same instant 02:30 EST would be);
- a local time the clock repeats in autumn runs once, the first time.

As in cron, when both day of month and day of week are restricted, either may match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.core.rules.suggest import closest

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_HINT = "five fields: minute hour day-of-month month day-of-week, such as '0 6 * * 1-5'"
# Feb 29 on a given weekday can be 28 years away; nothing valid is further.
SEARCH_HORIZON_DAYS = 29 * 366
SHORT_NAME_CUTOFF = 0.6
_ITEM = re.compile(r"(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?")


@dataclass(frozen=True)
class FieldRule:
    """How one of the five fields is written and read."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


FIELDS = (
    FieldRule("minute", 0, 59),
    FieldRule("hour", 0, 23),
    FieldRule("day of month", 1, 31),
    FieldRule("month", 1, 12, MONTH_NAMES),
    FieldRule("day of week", 0, 7, WEEKDAY_NAMES),  # 0 and 7 are both Sunday
)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the values each field allows."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    any_day: bool  # day of month was `*`
    any_weekday: bool  # day of week was `*`

    def matches_day(self, day: date) -> bool:
        """True when the schedule runs on this calendar day."""
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week


@dataclass(frozen=True)
class CronProblem:
    """A mistake in a schedule, `offset` characters into its text."""

    offset: int
    message: str


def parse_cron(text: str) -> tuple[CronSchedule | None, list[CronProblem]]:
    """The schedule `text` names, or None with every mistake found."""
    spelled = MACROS.get(text.strip().lower(), text)
    if text.strip().startswith("@") and spelled is text:
        return None, [_unknown_macro(text)]
    parts = [(m.start(), m.group()) for m in re.finditer(r"\S+", spelled)]
    if len(parts) != len(FIELDS):
        return None, [CronProblem(0, f"a schedule has {CRON_HINT}; found {len(parts)} fields")]
    problems: list[CronProblem] = []
    values = []
    for rule, (start, part) in zip(FIELDS, parts, strict=True):
        offset = 0 if spelled is not text else start
        values.append(_field_values(part.lower(), rule, offset, problems))
    if problems:
        return None, problems
    minutes, hours, days, months, weekdays = values
    return CronSchedule(
        text=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(d % 7 for d in weekdays),
        any_day=parts[2][1] == "*",
        any_weekday=parts[4][1] == "*",
    ), []


def _unknown_macro(text: str) -> CronProblem:
    guess = closest(text.strip().lower(), MACROS)
    hint = f"; did you mean '{guess}'?" if guess else ""
    return CronProblem(0, f"unknown schedule '{text.strip()}'{hint} (expected {CRON_HINT})")


def _field_values(part: str, rule: FieldRule, offset: int, problems: list[CronProblem]) -> set[int]:
    allowed: set[int] = set()
    position = offset
    for item in part.split(","):
        found = _item_values(item, rule)
        if isinstance(found, CronProblem):
            problems.append(CronProblem(position + found.offset, found.message))
        else:
            allowed |= found
        position += len(item) + 1
    return allowed


def _item_values(item: str, rule: FieldRule) -> set[int] | CronProblem:
    """The values of one comma-separated item, or what is wrong with it (the offset is the
    wrong word's, within the item)."""
    matched = _ITEM.fullmatch(item)
    if matched is None:
        message = f"{rule.name} '{item}' is not a value, a range a-b, * or a step such as */15"
        return CronProblem(0, message)
    span, step_text = matched.groups()
    step = int(step_text) if step_text else 1
    if step < 1:
        return CronProblem(0, f"{rule.name} step must be 1 or more; found '{item}'")
    if span == "*":
        return set(range(rule.low, rule.high + 1, step))
    bounds = _bounds(span, rule, open_ended=step_text is not None)
    if isinstance(bounds, CronProblem):
        return bounds
    low, high = bounds
    if low > high:
        message = f"{rule.name} range '{span}' runs backwards; write the lower end first"
        return CronProblem(0, message)
    return set(range(low, high + 1, step))


def _bounds(span: str, rule: FieldRule, *, open_ended: bool) -> tuple[int, int] | CronProblem:
    """`a` or `a-b` as (low, high); `a/step` runs from a to the field's end, as in cron."""
    ends, offset = [], 0
    for word in span.split("-"):
        found = _number(word, rule)
        if isinstance(found, str):
            return CronProblem(offset, found)
        ends.append(found)
        offset += len(word) + 1
    if len(ends) == 2:
        return ends[0], ends[1]
    return ends[0], rule.high if open_ended else ends[0]


def _number(word: str, rule: FieldRule) -> int | str:
    if word.isdigit():
        number = int(word)
        if rule.low <= number <= rule.high:
            return number
        return f"{rule.name} must be {_expected(rule)}; found {number}"
    if word in rule.names:
        return rule.low + rule.names.index(word)
    guess = _name_like(word, rule.names)
    hint = f"; did you mean '{guess}'?" if guess else ""
    return f"{rule.name} must be {_expected(rule)}; found '{word}'{hint}"


def _name_like(word: str, names: tuple[str, ...]) -> str | None:
    """`monday` and `fry` for `mon` and `fri`: whole names start with the short ones, and
    three letters leave little to compare, hence a lower cutoff than elsewhere."""
    prefixed = [name for name in names if word.startswith(name)]
    return prefixed[0] if prefixed else closest(word, names, cutoff=SHORT_NAME_CUTOFF)


def _expected(rule: FieldRule) -> str:
    numbers = f"{rule.low}-{rule.high}"
    if not rule.names:
        return numbers
    return f"{numbers} or {rule.names[0]}-{rule.names[-1]}"


def occurrences(
    schedule: CronSchedule, *, after: datetime, until: datetime, tz: str
) -> list[datetime]:
    """Every moment (aware, UTC) the schedule names in (after, until], in order."""
    zone = ZoneInfo(tz)
    first = after.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date() + timedelta(days=1)
    found = {
        moment
        for day in _days(first, last)
        if schedule.matches_day(day)
        for moment in _moments(schedule, day, zone)
        if after < moment <= until
    }
    return sorted(found)


def next_occurrence(schedule: CronSchedule, *, after: datetime, tz: str) -> datetime | None:
    """The first moment the schedule names after `after`; None when it never runs."""
    zone = ZoneInfo(tz)
    start = after.astimezone(zone).date()
    for day in _days(start, start + timedelta(days=SEARCH_HORIZON_DAYS)):
        if schedule.matches_day(day):
            later = [m for m in _moments(schedule, day, zone) if m > after]
            if later:
                return min(later)
    return None


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _moments(schedule: CronSchedule, day: date, zone: ZoneInfo) -> Iterator[datetime]:
    for hour in schedule.hours:
        for minute in schedule.minutes:
            # fold=0: the first of a repeated local time; a skipped one lands after the gap.
            local = datetime.combine(day, time(hour, minute), tzinfo=zone)
            yield local.astimezone(UTC)
