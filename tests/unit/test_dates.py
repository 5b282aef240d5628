"""Date expressions, durations, time zones and date-valued fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from service.core.rules.evaluation.dates import (
    as_moment,
    format_duration,
    is_date_expr_attempt,
    is_known_timezone,
    local_date,
    parse_date_expr,
    parse_date_value,
    parse_duration,
    resolve_date_expr,
    utc_iso,
    utc_offset_hours,
)
from service.core.rules.model import DateExpr

NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "offset_days"),
    [("today", 0), ("today+7d", 7), ("today-1d", -1), ("today+2w", 14), ("today-0d", 0)],
)
def test_dates_parse_date_expr_accepts_today_forms(text: str, offset_days: int) -> None:
    """today, today±Nd and today±Nw parse to a day offset that keeps the text."""
    expected = DateExpr(offset_days=offset_days, text=text)

    assert expected == parse_date_expr(text)


@pytest.mark.parametrize("text", ["today + 7d", "today+7x", "today+d", "tomorrow", "Today", ""])
def test_dates_parse_date_expr_rejects_other_text(text: str) -> None:
    """Spaces, unknown units and other words are not date expressions."""
    assert None is parse_date_expr(text)


@pytest.mark.parametrize(
    ("text", "attempt"),
    [
        ("today+7x", True),
        ("today + 7d", True),
        ("today+d", True),
        ("today", True),
        ("todays deals", False),
        ("today - call them", False),
        ("today is fine", False),
    ],
)
def test_dates_is_date_expr_attempt_spots_typos(text: str, attempt: bool) -> None:
    """Text that starts like a date expression is meant as one, so its typos are errors."""
    assert attempt == is_date_expr_attempt(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("2w", 14 * 86400), ("0d", 0)],
)
def test_dates_parse_duration_counts_seconds(text: str, seconds: int) -> None:
    """Durations in minutes, hours, days and weeks become seconds."""
    assert seconds == parse_duration(text)


@pytest.mark.parametrize("text", ["90", "1y", "90 d", "d", "-1d", "1.5h"])
def test_dates_parse_duration_rejects_other_text(text: str) -> None:
    """Durations need a whole number and one of the units m, h, d, w."""
    assert None is parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(7776000, "90d"), (1209600, "2w"), (43200, "12h"), (1800, "30m")]
)
def test_dates_format_duration_picks_the_largest_unit(seconds: int, text: str) -> None:
    """Explanations show durations in the largest whole unit."""
    assert text == format_duration(seconds)


def test_dates_local_date_is_new_yorks_date_late_in_the_evening() -> None:
    """03:30 UTC on the 28th is 22:30 on the 27th in New York."""
    assert date(2026, 11, 27) == local_date(utc("2026-11-28T03:30:00"), NEW_YORK)


def test_dates_local_date_treats_naive_moments_as_utc() -> None:
    """A naive moment is read as UTC."""
    assert date(2026, 11, 27) == local_date(datetime(2026, 11, 28, 3, 30), NEW_YORK)  # noqa: DTZ001 the case under test


@pytest.mark.parametrize(
    ("moment", "hours"),
    [
        ("2026-03-08T06:59:59", -5.0),  # 01:59:59 EST, just before the spring change
        ("2026-03-08T07:00:00", -4.0),  # 03:00 EDT, just after
        ("2026-11-01T05:59:59", -4.0),  # 01:59:59 EDT, the first 01:59
        ("2026-11-01T06:00:00", -5.0),  # 01:00 EST, the second 01:00
    ],
)
def test_dates_utc_offset_hours_follows_new_york_dst(moment: str, hours: float) -> None:
    """New York's offset changes at 02:00 local on both 2026 change days."""
    assert hours == utc_offset_hours(utc(moment), NEW_YORK)


@pytest.mark.parametrize(
    ("tz", "moment", "hours"),
    [
        ("Asia/Kolkata", "2026-07-01T00:00:00", 5.5),
        ("America/St_Johns", "2026-07-01T12:00:00", -2.5),
        ("America/St_Johns", "2026-01-15T12:00:00", -3.5),
        ("UTC", "2026-07-01T12:00:00", 0.0),
    ],
)
def test_dates_utc_offset_hours_handles_half_hour_zones(tz: str, moment: str, hours: float) -> None:
    """Half-hour zones give fractional offsets, as x-tz-offset expects."""
    assert hours == utc_offset_hours(utc(moment), tz)


def test_dates_resolve_date_expr_shifts_from_the_local_date() -> None:
    """today+7d counts from the rule zone's date of the event, not from UTC's."""
    moment = utc("2026-11-28T03:30:00")

    assert date(2026, 12, 4) == resolve_date_expr(
        DateExpr(7, "today+7d"), moment=moment, tz=NEW_YORK
    )
    assert date(2026, 11, 26) == resolve_date_expr(
        DateExpr(-1, "today-1d"), moment=moment, tz=NEW_YORK
    )


def test_dates_resolve_date_expr_crosses_dst_change_by_calendar_days() -> None:
    """A week after the night clocks spring forward is seven calendar days on."""
    moment = utc("2026-03-08T04:30:00")  # 23:30 EST on the 7th

    assert date(2026, 3, 14) == resolve_date_expr(
        DateExpr(7, "today+7d"), moment=moment, tz=NEW_YORK
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27", date(2026, 11, 27)),
        ("2026-11-27T10:00:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        (
            "2026-11-27T10:00:00-05:00",
            datetime(2026, 11, 27, 10, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ("2026-11-27T10:00:00.123456+00:00", datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_dates_parse_date_value_reads_dates_and_datetimes(value: str, expected: date) -> None:
    """ISO dates stay dates; datetimes come back aware, naive ones as UTC."""
    assert expected == parse_date_value(value)


@pytest.mark.parametrize("value", ["20261127", "2026-13-01", "Won", 20261127, None, "2026-11-27x"])
def test_dates_parse_date_value_rejects_other_values(value: object) -> None:
    """Numbers, labels and malformed dates are not dates."""
    assert None is parse_date_value(value)


def test_dates_as_moment_places_a_date_at_local_midnight() -> None:
    """A date-only field counts from midnight in the rule's zone."""
    assert utc("2026-11-27T05:00:00") == as_moment(date(2026, 11, 27), NEW_YORK)


def test_dates_utc_iso_writes_plus_zero_offset() -> None:
    """`now` is written in UTC with +00:00."""
    moment = datetime(2026, 11, 27, 22, 30, tzinfo=timezone(timedelta(hours=-5)))

    assert "2026-11-28T03:30:00+00:00" == utc_iso(moment)


@pytest.mark.parametrize(
    ("name", "known"),
    [("America/New_York", True), ("Mars/Olympus", False), ("../etc", False), ("", False)],
)
def test_dates_is_known_timezone_checks_iana_names(name: str, known: bool) -> None:
    """Unknown and malformed zone names are not accepted."""
    assert known == is_known_timezone(name)
