"""explain_plan: make_plan's plan, unchanged, with a trace of every rule and condition."""

from __future__ import annotations

import pytest

from service.core.events import Event
from service.core.rules import RuleSet, explain_plan, load_rules, make_plan
from service.core.rules.evaluation.trace import ConditionTrace
from service.core.rules.model import Position
from tests.unit.rules_support import METADATA, make_event
from tests.unit.test_engine import DESIGN_RULES

FILE = "rules/t.yaml"
DESIGN = load_rules(DESIGN_RULES, FILE)
EVENTS = [
    make_event(
        date_created="2026-11-28T03:30:00Z",
        changed_fields=["status_type"],
        previous_data={"status_type": "active"},
        data={"status_type": "won", "confidence": 80, "value": 2000000},
    ),
    make_event("created", data={"status_type": "won", "confidence": 100, "date_won": "2026-05-04"}),
    make_event("deleted", previous_data={"status_type": "won", "confidence": 1}),
    make_event(data={"value": 5}, object_type="lead"),
    make_event(data={"confidence": 1}, api_key_id="api_own"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.object_type}.{e.action}")
def test_trace_plan_is_make_plans_own(event: Event) -> None:
    """The plan inside an explanation equals make_plan's, field for field."""
    own = frozenset({"api_own"})

    assert (
        make_plan(DESIGN, event, metadata=None, own_api_key_ids=own)
        == explain_plan(DESIGN, event, metadata=None, own_api_key_ids=own).plan
    )


def test_trace_ignored_event_has_no_rule_traces() -> None:
    """An event the engine ignores (not an opportunity) is explained by its reason alone."""
    explanation = explain_plan(DESIGN, EVENTS[3], metadata=None)

    assert ("not an opportunity event: lead.updated", ()) == (
        explanation.plan.ignored,
        explanation.rules,
    )


def test_trace_every_condition_is_evaluated_with_its_values() -> None:
    """A rule that fails on its first condition still shows the second, with both values."""
    event = make_event(data={"value": 5000, "custom.Segment": ["SMB"]})

    trace = explain_plan(DESIGN, event, metadata=None).rules[1]

    assert (False, "value 5000 gte 1000000 is false (rules/t.yaml:16:9)") == (
        trace.fired,
        trace.reason,
    )
    assert [
        ("value", "gte", "1000000", "5000", False),
        ("custom.Segment", "not_contains", '"Enterprise"', '["SMB"]', True),
    ] == [(c.field, c.operator, c.operand, c.value, c.ok) for c in trace.condition.children]


def test_trace_changed_tests_show_the_previous_value() -> None:
    """changed_to shows the value before and after the event."""
    trace = explain_plan(DESIGN, EVENTS[0], metadata=None).rules[0]
    test = trace.condition.children[0]

    assert (True, '"active"', '"won"', True) == (
        trace.fired,
        test.previous,
        test.value,
        test.changed,
    )


def test_trace_nested_any_and_not_keep_their_shape() -> None:
    """any and not nodes carry their children, each with its own result."""
    rules = load_rules(
        "rules:\n  - name: r\n    if:\n"
        "      - any: [{status: Won}, {value: {gt: 10}}]\n"
        "      - not: {status_type: lost}\n"
        "    then: [{set: {confidence: 1}}]\n",
        FILE,
    )
    event = make_event(data={"status_label": "Active", "value": 50, "status_type": "active"})

    root = explain_plan(rules, event, metadata=None).rules[0].condition

    assert [("any", True, [False, True]), ("not", True, [False])] == [
        (node.kind, node.ok, [child.ok for child in node.children]) for node in root.children
    ]


def test_trace_unknown_custom_field_is_marked_unknown() -> None:
    """With metadata, a custom field Close does not have is traced as unknown, not compared."""
    rules = load_rules(
        "rules:\n  - name: r\n    if: [{custom.Region: EMEA}]\n"
        "    then: [{set: {confidence: 1}}]\n",
        FILE,
    )

    test = explain_plan(rules, make_event(), metadata=METADATA).rules[0].condition.children[0]

    assert (False, False) == (test.known, test.ok)


def test_trace_contributors_name_the_rules_behind_each_key() -> None:
    """Each key of the update names the rules whose parts it carries."""
    explanation = explain_plan(DESIGN, EVENTS[0], metadata=None)

    assert {
        "date_won": ("stamp-date-won",),
        "confidence": ("full-confidence-when-won",),
        "custom.Segment.add": ("tag-big-deals",),
    } == dict(explanation.contributors)


def test_trace_fired_rules_carry_their_parts() -> None:
    """A fired rule's trace lists what it writes, with the value it finds."""
    trace = explain_plan(DESIGN, EVENTS[0], metadata=None).rules[2]

    assert [("confidence", 100, 80)] == [(p.key, p.value, p.current) for p in trace.parts]


def test_trace_rule_without_conditions_has_an_empty_tree() -> None:
    """A rule without `if` is an empty all-of that holds."""
    rules: RuleSet = load_rules("rules:\n  - name: r\n    then: [{set: {confidence: 1}}]\n", FILE)

    assert ConditionTrace("all", True, Position(FILE, 2, 5)) == (
        explain_plan(rules, make_event(), metadata=None).rules[0].condition
    )
