"""The operator table and condition trees, evaluated against plain events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from service.core.events import Event
from service.core.rules import spec
from service.core.rules.evaluation.conditions import OPERATORS, Outcome, Scope, evaluate
from service.core.rules.model import (
    AllOf,
    AnyOf,
    Condition,
    ConditionNode,
    DateExpr,
    Metadata,
    Not,
    Position,
)
from tests.unit.rules_support import METADATA, make_event

POS = Position("rules/x.yaml", 10, 9)
NEW_YORK = "America/New_York"


def cond(field: str, operator: str, operand: Any) -> Condition:
    return Condition(field, operator, operand, POS)


def outcome(
    node: ConditionNode,
    event: Event,
    *,
    metadata: Metadata | None = None,
    tz: str = "UTC",
) -> Outcome:
    return evaluate(node, Scope(event, metadata, tz))


def holds(node: ConditionNode, data: dict[str, Any], **kwargs: Any) -> bool:
    return outcome(node, make_event(data=data), **kwargs).ok


def test_conditions_table_covers_the_spec() -> None:
    """Every operator the language names has an implementation, and no other."""
    assert list(spec.OPERATORS) == list(OPERATORS)


@pytest.mark.parametrize(
    ("operator", "value", "operand", "expected"),
    [
        ("eq", "won", "won", True),
        ("eq", "won", "Won", False),
        ("eq", 1, 1.0, True),
        ("eq", True, 1, False),
        ("eq", None, None, True),
        ("eq", "2026-11-27T10:00:00Z", "2026-11-27T05:00:00-05:00", True),
        ("eq", ["a", "b"], ["a", "b"], True),
        ("eq", "5", 5, False),
        ("ne", "won", "lost", True),
        ("ne", 100, 100.0, False),
        ("in", "Won", ["Won", "Lost"], True),
        ("in", 3, [1, 2, 3.0], True),
        ("in", None, ["Won"], False),
        ("not_in", "Active", ["Won", "Lost"], True),
        ("not_in", None, ["Won"], True),
        ("not_in", "Won", ["Won"], False),
        ("gt", 5000, 1000, True),
        ("gt", 1000, 1000, False),
        ("gte", 1000000, 1000000, True),
        ("gte", 5000, 1000000, False),
        ("lt", 90, 100, True),
        ("lt", None, 100, False),
        ("lt", "90", 100, False),
        ("lte", 100, 100, True),
        ("gte", True, 0, False),
        ("contains", ["SMB", "Enterprise"], "Enterprise", True),
        ("contains", "Enterprise plus", "Enterprise", True),
        ("contains", ["SMB"], "Enterprise", False),
        ("contains", None, "Enterprise", False),
        ("contains", 5, 5, False),
        ("not_contains", None, "Enterprise", True),
        ("not_contains", ["SMB"], "Enterprise", True),
        ("not_contains", "Enterprise", "Enterprise", False),
        ("matches", "Proposal sent", "^Prop", True),
        ("matches", "Sent proposal", "^Prop", False),
        ("matches", 12345, "^12", True),
        ("matches", ["x", "Enterprise"], "^Ent", True),
        ("matches", None, ".*", False),
        ("empty", None, True, True),
        ("empty", "", True, True),
        ("empty", [], True, True),
        ("empty", {}, True, True),
        ("empty", 0, True, False),
        ("empty", "x", False, True),
        ("empty", None, False, False),
    ],
)
def test_conditions_operator_on_current_value(
    operator: str, value: Any, operand: Any, expected: bool
) -> None:
    """Each value operator compares the field's current value with its operand."""
    assert expected == holds(cond("f", operator, operand), {"f": value})


def test_conditions_absent_field_reads_as_null() -> None:
    """A field missing from the data is null: empty, not contains, eq null."""
    data: dict[str, Any] = {}

    assert [True, True, True, False] == [
        holds(cond("f", "empty", True), data),
        holds(cond("f", "not_contains", "x"), data),
        holds(cond("f", "eq", None), data),
        holds(cond("f", "gt", 0), data),
    ]


@pytest.mark.parametrize(
    ("operator", "value", "operand", "expected"),
    [
        ("gt", "2026-11-28", date(2026, 11, 27), True),
        ("lt", "2026-11-27", date(2026, 11, 27), False),
        ("lte", "2026-11-27", date(2026, 11, 27), True),
        ("lt", "not a date", date(2026, 11, 27), False),
        ("lt", None, date(2026, 11, 27), False),
        # 03:30 UTC on the 28th is still the 27th in New York
        ("eq", "2026-11-28T03:30:00Z", DateExpr(0, "today"), True),
        ("lt", "2026-11-20", DateExpr(-1, "today-1d"), True),
        ("gte", "2026-12-04", DateExpr(7, "today+7d"), True),
        ("gt", "2026-12-04", DateExpr(7, "today+7d"), False),
        ("gt", "2026-11-28T03:00:00Z", datetime(2026, 11, 28, 2, tzinfo=UTC), True),
        ("lt", "2026-11-27", datetime(2026, 11, 27, 6, tzinfo=UTC), True),  # 05:00Z
        ("lt", "2026-11-27", datetime(2026, 11, 27, 4, tzinfo=UTC), False),
    ],
)
def test_conditions_dates_compare_in_the_rules_zone(
    operator: str, value: Any, operand: Any, expected: bool
) -> None:
    """Date operands compare as dates in the rule's zone, on the event's day."""
    event = make_event(data={"d": value}, date_created="2026-11-28T03:30:00Z")

    assert expected == outcome(cond("d", operator, operand), event, tz=NEW_YORK).ok


def test_conditions_eq_date_expr_with_a_date_field() -> None:
    """`date_won: today` holds when the field holds the zone's date of the event."""
    event = make_event(data={"date_won": "2026-11-27"}, date_created="2026-11-28T03:30:00Z")

    assert (True, False) == (
        outcome(cond("date_won", "eq", DateExpr(0, "today")), event, tz=NEW_YORK).ok,
        outcome(cond("date_won", "eq", DateExpr(0, "today")), event, tz="UTC").ok,
    )


@pytest.mark.parametrize(
    ("operator", "value", "seconds", "expected"),
    [
        ("older_than", "2026-02-01T12:00:00Z", 90 * 86400, True),
        ("older_than", "2026-02-03T12:00:01Z", 90 * 86400, False),
        ("older_than", "2026-02-03T12:00:00Z", 90 * 86400, True),  # exactly 90 days
        ("newer_than", "2026-05-04T00:00:00Z", 12 * 3600, False),
        ("newer_than", "2026-05-04T00:00:01Z", 12 * 3600, True),
        ("newer_than", "2026-05-04T11:45:00+00:00", 1800, True),
        ("older_than", None, 60, False),
        ("newer_than", None, 60, False),
        ("newer_than", "soon", 60, False),
    ],
)
def test_conditions_age_operators_count_back_from_the_event(
    operator: str, value: Any, seconds: int, expected: bool
) -> None:
    """older_than/newer_than measure from the event's date_created, never the clock."""
    event = make_event(data={"d": value}, date_created="2026-05-04T12:00:00Z")

    assert expected == outcome(cond("d", operator, seconds), event).ok


def test_conditions_age_of_a_date_counts_from_local_midnight() -> None:
    """A date-only field is as old as its midnight in the rule's zone."""
    # midnight of the 27th in New York is 05:00 UTC; the event is 22.5 hours later
    event = make_event(data={"date_won": "2026-11-27"}, date_created="2026-11-28T03:30:00Z")

    assert (False, True) == (
        outcome(cond("date_won", "older_than", 86400), event, tz=NEW_YORK).ok,
        outcome(cond("date_won", "older_than", 22 * 3600), event, tz=NEW_YORK).ok,
    )


STATUS_CHANGE = make_event(
    "updated",
    data={"status_type": "won", "status_label": "Won", "confidence": 100, "value": 5000},
    previous_data={"status_type": "active", "status_label": "Active", "confidence": 100},
    changed_fields=["status_id", "status_label", "status_type"],
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("status_type", "changed", True), True),
        (cond("value", "changed", True), False),
        (cond("value", "changed", False), True),
        (cond("status_type", "changed_to", "won"), True),
        (cond("status_type", "changed_to", ["lost", "won"]), True),
        (cond("status_type", "changed_to", "lost"), False),
        (cond("status_type", "changed_from", "active"), True),
        (cond("status_type", "changed_from", ["lost"]), False),
        (cond("status", "changed_to", "Won"), True),
        (cond("status", "changed_from", "Active"), True),
        # in previous_data but equal, and not in changed_fields: not a change
        (cond("confidence", "changed", True), False),
        (cond("value", "changed_to", 5000), False),
    ],
)
def test_conditions_changed_operators_read_changed_fields(
    condition: Condition, expected: bool
) -> None:
    """changed* hold only for fields this event changed, comparing old and new values."""
    assert expected == outcome(condition, STATUS_CHANGE).ok


def test_conditions_changed_detected_from_previous_data_alone() -> None:
    """A field whose previous value differs counts as changed even if changed_fields omits it."""
    event = make_event(data={"confidence": 90}, previous_data={"confidence": 80})

    assert True is outcome(cond("confidence", "changed_from", 80), event).ok


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("status_type", "changed_to", "won"), True),
        (cond("status_type", "changed", True), True),
        (cond("status_type", "changed_from", None), True),
        (cond("status_type", "changed_from", "active"), False),
        (cond("date_lost", "changed", True), False),  # null before and after
        (cond("date_lost", "changed_to", None), False),
    ],
)
def test_conditions_created_event_counts_fields_as_changed_from_null(
    condition: Condition, expected: bool
) -> None:
    """On a created event every field with a value changed from null."""
    event = make_event("created", data={"status_type": "won", "date_lost": None})

    assert expected == outcome(condition, event).ok


def test_conditions_deleted_event_changes_nothing() -> None:
    """On a deleted event no field changed; the state is the deleted object's."""
    event = make_event(
        "deleted", previous_data={"status_type": "won"}, changed_fields=["status_type"]
    )

    assert (False, True) == (
        outcome(cond("status_type", "changed", True), event).ok,
        outcome(cond("status_type", "eq", "won"), event).ok,
    )


def test_conditions_status_reads_the_label() -> None:
    """`status` compares the status label."""
    assert True is holds(
        cond("status", "eq", "Proposal"), {"status_label": "Proposal", "status_id": "stat_1"}
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"custom.cf_seg": ["Enterprise"]}, True),
        ({"custom": {"cf_seg": ["Enterprise"]}}, True),
        ({"custom": {"Segment": ["Enterprise"]}}, True),
        ({"custom.Segment": ["Enterprise"]}, False),  # the name is not Close's key
        ({}, False),
    ],
)
def test_conditions_custom_field_by_name_reads_its_id(data: dict[str, Any], expected: bool) -> None:
    """With metadata, custom.NAME reads Close's custom.cf_ID key (or the nested custom dict)."""
    assert expected == holds(
        cond("custom.Segment", "contains", "Enterprise"), data, metadata=METADATA
    )


def test_conditions_custom_field_by_id_reads_its_id() -> None:
    """custom.cf_ID names the same field as its name does."""
    assert True is holds(
        cond("custom.cf_src", "eq", "web"), {"custom.cf_src": "web"}, metadata=METADATA
    )


def test_conditions_custom_field_offline_reads_as_written() -> None:
    """Without metadata, custom.NAME reads the key exactly as written."""
    assert True is holds(cond("custom.Segment", "eq", "SMB"), {"custom.Segment": "SMB"})


def test_conditions_custom_field_changed_by_id() -> None:
    """Changes of a named custom field are found under its id in changed_fields."""
    event = make_event(
        data={"custom.cf_src": "web"},
        previous_data={"custom.cf_src": None},
        changed_fields=["custom.cf_src"],
    )

    assert True is outcome(cond("custom.Source", "changed_to", "web"), event, metadata=METADATA).ok


def test_conditions_unknown_custom_field_does_not_hold() -> None:
    """A custom field the metadata does not know fails, saying so."""
    expected = Outcome(False, "unknown custom field 'Nope' (rules/x.yaml:10:9)")

    assert expected == outcome(cond("custom.Nope", "empty", True), make_event(), metadata=METADATA)


def test_conditions_explain_value_comparisons() -> None:
    """A failing test says field, value, operator, operand and position."""
    expected = Outcome(False, "value 5000 gte 1000000 is false (rules/x.yaml:10:9)")

    assert expected == outcome(cond("value", "gte", 1000000), make_event(data={"value": 5000}))


def test_conditions_explain_changes() -> None:
    """changed* explanations say what the field changed from and to, or that it did not."""
    assert [
        'status_type changed from "active" to "won"; changed_to "lost" is false '
        "(rules/x.yaml:10:9)",
        "value unchanged (5000); changed true is false (rules/x.yaml:10:9)",
    ] == [
        outcome(cond("status_type", "changed_to", "lost"), STATUS_CHANGE).detail,
        outcome(cond("value", "changed", True), STATUS_CHANGE).detail,
    ]


def test_conditions_explain_date_expressions_and_durations() -> None:
    """Date expressions show the date they stand for; durations their units."""
    event = make_event(data={"d": "2026-01-01"}, date_created="2026-11-28T03:30:00Z")

    assert [
        'd "2026-01-01" gt today-30d (2026-10-28) is false (rules/x.yaml:10:9)',
        'd "2026-01-01" newer_than 90d is false (rules/x.yaml:10:9)',
    ] == [
        outcome(cond("d", "gt", DateExpr(-30, "today-30d")), event, tz=NEW_YORK).detail,
        outcome(cond("d", "newer_than", 90 * 86400), event, tz=NEW_YORK).detail,
    ]


def test_conditions_all_of_reports_the_first_failure() -> None:
    """All conditions must hold; the reason is the first that does not."""
    node = AllOf((cond("a", "eq", 1), cond("b", "eq", 2), cond("c", "eq", 3)), POS)

    assert Outcome(False, "b 0 eq 2 is false (rules/x.yaml:10:9)") == outcome(
        node, make_event(data={"a": 1, "b": 0, "c": 0})
    )


def test_conditions_empty_all_of_holds() -> None:
    """A rule without `if` always holds."""
    assert Outcome(True, "no conditions") == outcome(AllOf((), POS), make_event())


def test_conditions_any_of_holds_when_one_holds() -> None:
    """any holds when at least one branch holds."""
    node = AnyOf((cond("a", "eq", 1), cond("b", "eq", 2)), POS)

    assert (True, False) == (
        holds(node, {"a": 0, "b": 2}),
        holds(node, {"a": 0, "b": 0}),
    )


def test_conditions_any_of_explains_every_branch() -> None:
    """When no branch holds, the reason lists them all."""
    node = AnyOf((cond("a", "eq", 1), cond("b", "eq", 2)), POS)
    expected = (
        "none of: a 0 eq 1 is false (rules/x.yaml:10:9); b 0 eq 2 is false (rules/x.yaml:10:9)"
    )

    assert expected == outcome(node, make_event(data={"a": 0, "b": 0})).detail


def test_conditions_not_inverts_and_explains() -> None:
    """not holds when its condition does not, and says what held."""
    node = Not(cond("status_type", "eq", "lost"), POS)

    assert [
        True,
        Outcome(False, 'not (status_type "lost" eq "lost" is true (rules/x.yaml:10:9))'),
    ] == [
        holds(node, {"status_type": "won"}),
        outcome(node, make_event(data={"status_type": "lost"})),
    ]


def test_conditions_nest_any_and_not() -> None:
    """any and not nest to any depth."""
    node = AllOf(
        (
            AnyOf(
                (
                    cond("a", "eq", 1),
                    Not(AnyOf((cond("b", "eq", 1), cond("c", "eq", 1)), POS), POS),
                ),
                POS,
            ),
            Not(Not(cond("d", "eq", 1), POS), POS),
        ),
        POS,
    )

    assert [True, False, True] == [
        holds(node, {"a": 0, "b": 0, "c": 0, "d": 1}),
        holds(node, {"a": 0, "b": 1, "c": 0, "d": 1}),
        holds(node, {"a": 1, "b": 1, "c": 1, "d": 1}),
    ]
