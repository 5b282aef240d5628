"""How much text rules read: conditions and templates see a long value's first
MAX_TEXT_CHARS characters, and the plan says which value was cut and how long it was."""

from __future__ import annotations

from typing import Any

import pytest

from service.authoring.explain import format_explanation
from service.core.events import Event
from service.core.rules import explain_plan, load_rules, make_plan
from service.core.rules.evaluation.conditions import Scope, evaluate
from service.core.rules.evaluation.facts import Facts
from service.core.rules.evaluation.predicates import compile_condition
from service.core.rules.evaluation.texts import MAX_TEXT_CHARS
from service.core.rules.model import Condition, Metadata, Position, Truncated
from tests.unit import hostile
from tests.unit.rules_support import METADATA, make_event

POS = Position("rules/x.yaml", 1, 1)
LONG = "a" * MAX_TEXT_CHARS + "TAIL"  # the cap's worth of a's, then text past it


def both_ways(condition: Condition, event: Event, metadata: Metadata | None = None) -> bool:
    """The condition's answer, which the interpreter and the compiled predicate must share."""
    interpreted = evaluate(condition, Scope(event, metadata, "UTC")).ok
    compiled = compile_condition(condition, "UTC")(Facts(event, metadata))
    assert interpreted is compiled, f"{condition}: {interpreted=} {compiled=}"
    return compiled


@pytest.mark.parametrize(
    ("operator", "operand", "expected"),
    [
        ("contains", "TAIL", False),
        ("not_contains", "TAIL", True),
        ("matches", "TAIL", False),
        ("matches", "a$", True),
        ("eq", LONG, False),
        ("eq", LONG[:MAX_TEXT_CHARS], True),
    ],
)
def test_texts_condition_judges_a_long_text_on_its_first_characters(
    operator: str, operand: Any, expected: bool
) -> None:
    """Past MAX_TEXT_CHARS a text is not read: the condition holds as on the cut text."""
    event = make_event(data={"note": LONG})

    assert expected == both_ways(Condition("note", operator, operand, POS), event)


def test_texts_previous_value_list_items_and_nested_custom_fields_are_cut_too() -> None:
    """The value before the change, each text of a multi-value field and a custom field in
    Close's older nested form are cut the same way."""
    event = make_event(
        data={"note": "short", "custom.cf_seg": ["SMB", LONG], "custom": {"Source": LONG}},
        previous_data={"note": LONG},
        changed_fields=["note"],
    )
    tests = [
        Condition("note", "changed_from", LONG[:MAX_TEXT_CHARS], POS),
        Condition("custom.Segment", "contains", LONG[:MAX_TEXT_CHARS], POS),
        Condition("custom.Source", "matches", "a$", POS),
    ]

    assert [True, True, True] == [both_ways(test, event, METADATA) for test in tests]


def test_texts_plan_notes_each_cut_value_with_its_length() -> None:
    """The plan names every value rules read cut, its length, and whether it is the value
    before the change; text within the cap is not noted."""
    event = make_event(
        data={"note": LONG, "lead_name": "a" * MAX_TEXT_CHARS, "custom": {"Source": LONG + "!"}},
        previous_data={"note": LONG + "!!"},
        changed_fields=["note"],
    )

    plan = make_plan(load_rules("rules: []\n", "rules/x.yaml"), event, metadata=None)

    assert (
        Truncated("note", MAX_TEXT_CHARS + 4),
        Truncated("custom.Source", MAX_TEXT_CHARS + 5),
        Truncated("note", MAX_TEXT_CHARS + 6, previous=True),
    ) == plan.truncated


def test_texts_template_reads_the_cut_text() -> None:
    """A template sees the same cut text as conditions do."""
    rules = load_rules(
        "rules:\n  - name: r\n    then: [{set: {confidence: '{{ opportunity.note|length }}'}}]\n",
        "rules/x.yaml",
    )

    plan = make_plan(rules, make_event(data={"note": LONG}), metadata=None)

    assert {"confidence": str(MAX_TEXT_CHARS)} == dict(plan.update)


def test_texts_explain_says_which_value_was_cut() -> None:
    """`dealkeeper explain` tells that a value was read only in part, with lengths only."""
    event = make_event(data={"note": LONG})

    lines = format_explanation(
        explain_plan(load_rules("rules: []\n", "rules/x.yaml"), event, metadata=None),
        event=event,
        context="",
    )

    assert (
        f"cut: rules read the first {MAX_TEXT_CHARS} of the {MAX_TEXT_CHARS + 4} characters of note"
    ) in lines


def test_texts_hostile_text_of_the_pattern_tests_is_read_whole() -> None:
    """The linear-time tests' text fits the cap, so what they search is what was written."""
    assert len(hostile.TEXT) <= MAX_TEXT_CHARS
