"""A sweep's `find` as Close's query parameters: every filter, and relative dates fixed from
the run's scheduled moment in the rule's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.core.rules import load_rules
from service.core.rules.language.find import find_params

MOMENT = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # 06:00 EDT, the day after DST began


def params(find: str, *, tz: str = "America/New_York") -> dict[str, str]:
    text = (
        f"timezone: {tz}\nrules:\n  - name: s\n    schedule: '0 6 * * *'\n"
        f"    find: {find}\n    then: [{{set: {{confidence: 1}}}}]\n"
    )
    sweep = load_rules(text, "rules/x.yaml").rules[0].sweep
    assert sweep is not None
    return find_params(sweep.filters, moment=MOMENT, tz=tz)


@pytest.mark.parametrize(
    ("find", "expected"),
    [
        ("{}", {}),
        ("{status_type: active}", {"status_type": "active"}),
        ("{status_type: {in: [won, lost]}}", {"status_type__in": "won,lost"}),
        ("{status: Won}", {"status_label": "Won"}),
        ("{status_label: {in: [Won, Closed]}}", {"status_label__in": "Won,Closed"}),
        ("{status_id: stat_1}", {"status_id": "stat_1"}),
        ("{user_id: {eq: user_1}}", {"user_id": "user_1"}),
        ("{lead_id: lead_1}", {"lead_id": "lead_1"}),
        ("{value_period: {in: [monthly, annual]}}", {"value_period__in": "monthly,annual"}),
        ("{query: 'note:important'}", {"query": "note:important"}),
        ("{lead_saved_search_id: save_1}", {"lead_saved_search_id": "save_1"}),
    ],
)
def test_find_exact_and_text_filters(find: str, expected: dict[str, str]) -> None:
    """Each exact or text filter becomes Close's parameter of that name (`status` is the
    label; lists use `__in`)."""
    assert expected == params(find)


@pytest.mark.parametrize(
    ("find", "expected"),
    [
        # Moments: exactly the run's moment less the duration.
        ("{date_updated: {older_than: 60d}}", {"date_updated__lte": "2026-01-08T10:00:00+00:00"}),
        ("{date_created: {newer_than: 12h}}", {"date_created__gt": "2026-03-08T22:00:00+00:00"}),
        # Dates on a datetime field: New York's midnights (EST in January, EDT in March).
        ("{date_created: {lt: 2026-01-01}}", {"date_created__lt": "2026-01-01T05:00:00+00:00"}),
        ("{date_created: {gte: 2026-03-09}}", {"date_created__gte": "2026-03-09T04:00:00+00:00"}),
        ("{date_created: {gt: 2025-12-31}}", {"date_created__gte": "2026-01-01T05:00:00+00:00"}),
        ("{date_created: {lte: 2025-12-31}}", {"date_created__lt": "2026-01-01T05:00:00+00:00"}),
        ("{date_updated: {lt: today-30d}}", {"date_updated__lt": "2026-02-07T05:00:00+00:00"}),
        ("{date_updated: {gt: '2026-01-05T12:00:00-05:00'}}",
         {"date_updated__gt": "2026-01-05T17:00:00+00:00"}),
        # date_won is a calendar date in Close: New York's date, not UTC's.
        ("{date_won: {gte: today-7d}}", {"date_won__gte": "2026-03-02"}),
        ("{date_won: {older_than: 30d}}", {"date_won__lte": "2026-02-07"}),
        ("{date_won: {newer_than: 1w}}", {"date_won__gt": "2026-03-02"}),
        # Two bounds on one parameter: the narrower stays.
        ("{date_updated: {older_than: 60d, lte: 2026-01-01}}",
         {"date_updated__lte": "2026-01-08T10:00:00+00:00",
          "date_updated__lt": "2026-01-02T05:00:00+00:00"}),
        ("{date_created: {gt: 2025-12-31, gte: 2026-02-01}}",
         {"date_created__gte": "2026-02-01T05:00:00+00:00"}),
    ],
)  # fmt: skip
def test_find_date_filters_become_absolute_bounds(find: str, expected: dict[str, str]) -> None:
    """Relative dates are fixed from the run's moment, date bounds placed in the zone."""
    assert expected == params(find)


def test_find_today_is_the_moments_date_in_the_rules_zone() -> None:
    """At 01:00 UTC it is still yesterday in Los Angeles: `today` there is the 8th."""
    late = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
    text = (
        "timezone: America/Los_Angeles\nrules:\n  - name: s\n    schedule: '0 6 * * *'\n"
        "    find: {date_won: {gte: today}}\n    then: [{set: {confidence: 1}}]\n"
    )
    sweep = load_rules(text, "rules/x.yaml").rules[0].sweep
    assert sweep is not None

    assert {"date_won__gte": "2026-03-08"} == find_params(
        sweep.filters, moment=late, tz="America/Los_Angeles"
    )
