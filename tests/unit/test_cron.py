"""Five-field cron schedules: parsing, mistakes with their offsets, and the moments they name
in a time zone, daylight-saving changes included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.core.rules.cron import CronProblem, next_occurrence, occurrences, parse_cron

NY = "America/New_York"


def moments(text: str, after: str, until: str, tz: str = "UTC") -> list[str]:
    schedule, problems = parse_cron(text)
    assert [] == problems
    assert schedule is not None
    start, end = (datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (after, until))
    return [m.isoformat() for m in occurrences(schedule, after=start, until=end, tz=tz)]


def test_cron_weekday_mornings_in_new_york() -> None:
    """`0 6 * * 1-5` names 06:00 New York time on weekdays only, in UTC."""
    assert [
        "2026-01-09T11:00:00+00:00",  # Friday
        "2026-01-12T11:00:00+00:00",  # Monday
    ] == moments("0 6 * * 1-5", "2026-01-09T00:00", "2026-01-12T23:59", NY)


def test_cron_lists_ranges_steps_and_names() -> None:
    """Lists, ranges with steps and month and weekday names read as cron reads them."""
    assert [
        "2026-02-02T00:00:00+00:00",
        "2026-02-02T00:20:00+00:00",
        "2026-02-02T00:40:00+00:00",
        "2026-02-04T00:00:00+00:00",
    ] == moments("*/20 0 * feb mon,wed", "2026-02-01T23:00", "2026-02-04T00:10")


def test_cron_step_from_a_value_runs_to_the_field_end() -> None:
    """`50/5` in the minute field is 50 and 55, as in cron."""
    assert ["2026-01-01T00:50:00+00:00", "2026-01-01T00:55:00+00:00"] == moments(
        "50/5 0 * * *", "2025-12-31T23:59", "2026-01-01T01:30"
    )


def test_cron_day_of_month_or_day_of_week_when_both_are_given() -> None:
    """With both day fields restricted, either matching is enough (the 13th, or a Friday)."""
    assert [
        "2026-02-06T00:00:00+00:00",  # Friday
        "2026-02-13T00:00:00+00:00",  # the 13th (and a Friday)
        "2026-02-20T00:00:00+00:00",
    ] == moments("0 0 13 * 5", "2026-02-05T12:00", "2026-02-20T12:00")


def test_cron_sunday_is_zero_and_seven() -> None:
    """Day of week 7 is Sunday, as 0 is."""
    assert moments("0 0 * * 7", "2026-03-01T00:00", "2026-03-15T12:00") == moments(
        "0 0 * * 0", "2026-03-01T00:00", "2026-03-15T12:00"
    )


def test_cron_macro_daily() -> None:
    """@daily is midnight every day."""
    assert ["2026-05-02T00:00:00+00:00"] == moments(
        "@daily", "2026-05-01T12:00", "2026-05-02T12:00"
    )


def test_cron_time_skipped_in_spring_runs_after_the_change() -> None:
    """02:30 does not exist in New York on 8 March 2026: that day's run is at 03:30 EDT."""
    assert [
        "2026-03-07T07:30:00+00:00",  # 02:30 EST
        "2026-03-08T07:30:00+00:00",  # 03:30 EDT, as the clock reads after the change
        "2026-03-09T06:30:00+00:00",  # 02:30 EDT
    ] == moments("30 2 * * *", "2026-03-07T00:00", "2026-03-09T12:00", NY)


def test_cron_time_repeated_in_autumn_runs_once() -> None:
    """01:30 happens twice in New York on 1 November 2026; it runs the first time only."""
    assert [
        "2026-10-31T05:30:00+00:00",
        "2026-11-01T05:30:00+00:00",  # 01:30 EDT; 01:30 EST (06:30 UTC) does not run
        "2026-11-02T06:30:00+00:00",
    ] == moments("30 1 * * *", "2026-10-31T00:00", "2026-11-02T12:00", NY)


def test_cron_next_occurrence_of_a_leap_day() -> None:
    """The next 29 February after 1 March 2026 is in 2028."""
    schedule, _ = parse_cron("0 0 29 2 *")
    assert schedule is not None

    found = next_occurrence(schedule, after=datetime(2026, 3, 1, tzinfo=UTC), tz="UTC")

    assert datetime(2028, 2, 29, tzinfo=UTC) == found


def test_cron_next_occurrence_of_a_day_that_never_comes() -> None:
    """30 February never comes: there is no next occurrence."""
    schedule, _ = parse_cron("0 0 30 2 *")
    assert schedule is not None

    assert None is next_occurrence(schedule, after=datetime(2026, 1, 1, tzinfo=UTC), tz="UTC")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 6 * *", [CronProblem(0, "a schedule has five fields: minute hour day-of-month "
                     "month day-of-week, such as '0 6 * * 1-5'; found 4 fields")]),
        ("61 25 * * *", [CronProblem(0, "minute must be 0-59; found 61"),
                         CronProblem(3, "hour must be 0-23; found 25")]),
        ("0 6 * * mon-fro", [CronProblem(12, "day of week must be 0-7 or sun-sat; found 'fro'; "
                             "did you mean 'fri'?")]),
        ("0 6 1,40 * *", [CronProblem(6, "day of month must be 1-31; found 40")]),
        ("0 6 * 12-1 *", [CronProblem(6, "month range '12-1' runs backwards; write the lower "
                          "end first")]),
        ("*/0 6 * * *", [CronProblem(0, "minute step must be 1 or more; found '*/0'")]),
        ("0 6 * * 1..5", [CronProblem(8, "day of week '1..5' is not a value, a range a-b, * or "
                          "a step such as */15")]),
        ("@dayly", [CronProblem(0, "unknown schedule '@dayly'; did you mean '@daily'? "
                    "(expected five fields: minute hour day-of-month month day-of-week, such "
                    "as '0 6 * * 1-5')")]),
    ],
)  # fmt: skip
def test_cron_mistakes_say_where_and_what(text: str, expected: list[CronProblem]) -> None:
    """Each mistake is placed at its own field and says what the field takes."""
    assert (None, expected) == parse_cron(text)


def test_cron_whole_day_names_suggest_the_short_ones() -> None:
    """`monday` is not a cron name; the message says to write `mon`."""
    expected = [
        CronProblem(8, "day of week must be 0-7 or sun-sat; found 'monday'; did you mean 'mon'?")
    ]

    assert (None, expected) == parse_cron("0 6 * * monday")
