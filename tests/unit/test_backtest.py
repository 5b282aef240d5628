"""Backtest tallies and rule-set differences, from events as Close's event log gives them."""

from __future__ import annotations

from typing import Any

from service.authoring.backtest import (
    Backtest,
    RulesDiff,
    compare,
    format_backtest,
    format_diff,
    readable_events,
    tally,
)
from service.core.rules import explain_plan, load_rules
from tests.unit.test_engine import DESIGN_RULES

DESIGN = load_rules(DESIGN_RULES, "rules/t.yaml")
CHANGED = load_rules(
    DESIGN_RULES.replace("{lt: 100}", "{lt: 90}").replace("gte: 1000000", "gte: 100"),
    "rules/new.yaml",
)


def logged(event_id: str, action: str = "updated", **fields: Any) -> dict[str, Any]:
    """An event as GET /event/ lists it."""
    return {
        "id": event_id,
        "object_type": "opportunity",
        "object_id": f"oppo_{event_id}",
        "action": action,
        "date_created": "2026-11-20T15:00:00.000000",
        "changed_fields": [],
        "previous_data": {},
        **fields,
    }


RAW = [
    logged(
        "won",
        changed_fields=["status_type"],
        previous_data={"status_type": "active"},
        data={"status_type": "won", "confidence": 95, "value": 500},
    ),
    logged("big", changed_fields=["value"], data={"status_type": "active", "value": 2000000}),
    logged("quiet", changed_fields=["note"], data={"status_type": "active", "value": 5}),
    logged("hidden", data=None),
    {"id": "broken"},
]


def run(ruleset: Any = DESIGN) -> Backtest:
    result = Backtest()
    for event in readable_events(RAW, result):
        tally(result, ruleset, event, metadata=None)
    return result


def test_backtest_counts_events_by_what_became_of_them() -> None:
    """Read, unreadable, without data and the ones that would have made a PUT are counted."""
    result = run()

    assert (5, 1, 1, 0, 2) == (
        result.events,
        result.unreadable,
        result.without_data,
        result.ignored,
        result.updates,
    )


def test_backtest_counts_per_rule_seen_fired_and_writes() -> None:
    """Each rule counts the events of its triggers, its firings and the updates it is part of."""
    result = run()

    assert {
        "stamp-date-won": (3, 1, 1),
        "tag-big-deals": (3, 1, 1),
        "full-confidence-when-won": (3, 1, 1),
    } == {name: (t.seen, t.fired, t.writes) for name, t in result.rules.items()}


def test_backtest_samples_show_before_and_after() -> None:
    """A sample change names the event, the opportunity, the key and both values."""
    sample = run().rules["full-confidence-when-won"].samples[0].describe({})

    assert "2026-11-20T15:00:00+00:00 oppo_won (won): confidence 95 -> 100" == sample


def test_backtest_table_lines_up_the_rules() -> None:
    """The table has one line per rule with its three numbers, then the totals."""
    lines = format_backtest(run(), title="backtest")

    assert [
        "backtest",
        "",
        "rule                        seen   fired  writes",
        "stamp-date-won                 3       1       1",
        "tag-big-deals                  3       1       1",
        "full-confidence-when-won       3       1       1",
        "",
        "5 events read, 2 would have made a PUT (0 ignored, 1 without data, 1 unreadable)",
    ] == lines[:8]


def test_backtest_diff_counts_what_the_change_adds_and_removes() -> None:
    """Keys only the new rules write are +, keys only the old ones write are -."""
    diff = RulesDiff()
    for event in readable_events(RAW, Backtest()):
        new = explain_plan(CHANGED, event, metadata=None)
        compare(diff, event, new=new, old=explain_plan(DESIGN, event, metadata=None))

    assert (3, 1, 1, 1, 0) == (
        diff.compared,
        diff.events_differing,
        diff.added,
        diff.removed,
        diff.changed,
    )
    assert [
        "difference from rules/ to new/, over 3 events: 1 would get a different update",
        "  + 1 writes only new/ makes",
        "  - 1 writes only rules/ makes",
        "  ~ 0 writes both make, with different values",
        "samples (+ new/ only, - rules/ only, ~ rules/ -> new/):",
        "  - 2026-11-20T15:00:00+00:00 oppo_won (won): confidence = 100",
        '  + 2026-11-20T15:00:00+00:00 oppo_won (won): custom.Segment.add = "Enterprise"',
    ] == format_diff(diff, new="new/", old="rules/")
