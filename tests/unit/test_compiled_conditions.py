"""The compiled predicates make_plan runs agree with the interpreter explain and reasons use.

make_plan decides with predicates.py and explains with conditions.py: if the two ever
disagreed, a plan would fire a rule whose reason says it did not hold. So every operator is
run both ways over a grid of fields, operands and events, and must give the same answer.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from service.core.events import Event
from service.core.rules import load_rule_sources, make_plan
from service.core.rules.evaluation.actions import Part
from service.core.rules.evaluation.conditions import Scope, evaluate
from service.core.rules.evaluation.facts import Facts
from service.core.rules.evaluation.predicates import compile_condition
from service.core.rules.evaluation.program import Compiled, compile_rule, compiled_rules
from service.core.rules.evaluation.verdicts import judge
from service.core.rules.language.cases import discover, load_cases
from service.core.rules.language.loader import read_sources
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

ROOT = Path(__file__).resolve().parents[2]
POS = Position("rules/x.yaml", 1, 1)
ZONES = ("UTC", "America/New_York", "Pacific/Kiritimati")
FIELDS = (
    "value",
    "status",
    "note",
    "date_won",
    "contact_ids",
    "custom.Segment",
    "custom.cf_src",
    "custom.Renewal date",
    "custom.Nowhere",
)
VALUES: tuple[Any, ...] = (
    None,
    0,
    10000,
    10000.0,
    "10000",
    "",
    "Won",
    "won deal",
    "SMB",
    "2026-05-03",
    "2026-05-04T03:30:00Z",
    "2026-03-01",
    [],
    ["SMB", "Enterprise"],
    True,
)
OPERANDS: dict[str, tuple[Any, ...]] = {
    "eq": (None, 10000, 10000.0, "10000", "Won", "SMB", "2026-05-03", True, ["SMB"]),
    "ne": (None, 10000, "Won", "SMB", ["SMB", "Enterprise"]),
    "in": (["Won", 10000], ["smb", "SMB"], [None], [], ["2026-05-03"]),
    "not_in": (["Won", 10000], [None], [], ["SMB", "Won"]),
    "gt": (0, 9999.5, DateExpr(0, "today"), DateExpr(-2, "today-2d"), date(2026, 5, 3)),
    "gte": (10000, DateExpr(0, "today"), DateExpr(1, "today+1d")),
    "lt": (10000, DateExpr(0, "today"), datetime(2026, 5, 4, 3, 0, tzinfo=UTC)),
    "lte": (0, DateExpr(-1, "today-1d")),
    "contains": ("SMB", "on", 10000, ""),
    "not_contains": ("SMB", "Won"),
    "matches": ("^W", "(?i)smb", r"\d{4}-05"),
    "empty": (True, False),
    "changed": (True, False),
    "changed_from": (None, "Won", ["SMB", None], 0),
    "changed_to": (None, "SMB", ["Won", 10000]),
    "older_than": (0, 86400, 86400 * 60),
    "newer_than": (3600, 86400 * 2),
}


def events_for(field_key: str, value: Any) -> list[Event]:
    """A created event, an update that changed the field, and one that did not."""
    old = "Won" if value != "Won" else None
    return [
        make_event("created", data={field_key: value}),
        make_event(
            data={field_key: value},
            previous_data={field_key: old},
            changed_fields=[field_key],
        ),
        make_event(data={field_key: value, "note": "unrelated"}, changed_fields=["note"]),
        make_event("deleted", data={field_key: value}),
    ]


def key_of(field: str) -> str:
    return {
        "status": "status_label",
        "custom.Segment": "custom.cf_seg",
        "custom.Renewal date": "custom.cf_renew",
        "custom.cf_src": "custom.cf_src",
        "custom.Nowhere": "custom.cf_nowhere",
    }.get(field, field)


def assert_agree(node: ConditionNode, event: Event, metadata: Metadata | None, tz: str) -> None:
    interpreted = evaluate(node, Scope(event, metadata, tz)).ok
    compiled = compile_condition(node, tz)(Facts(event, metadata))
    assert compiled is interpreted, f"{node} on {event.state} in {tz}: {compiled=}"


@pytest.mark.parametrize("operator", sorted(OPERANDS))
def test_every_operator_agrees_with_the_interpreter(operator: str) -> None:
    checked = 0
    for field, operand, value, tz in itertools.product(FIELDS, OPERANDS[operator], VALUES, ZONES):
        node = Condition(field, operator, operand, POS)
        for event in events_for(key_of(field), value):
            for metadata in (METADATA, None):
                assert_agree(node, event, metadata, tz)
                checked += 1
    assert checked > 1000


def test_combinators_agree_with_the_interpreter() -> None:
    big = Condition("value", "gt", 5000, POS)
    won = Condition("status", "eq", "Won", POS)
    smb = Condition("custom.Segment", "contains", "SMB", POS)
    moved = Condition("status", "changed", True, POS)
    trees: list[ConditionNode] = [
        AllOf((big,), POS),
        AllOf((big, won), POS),
        AllOf((big, won, smb), POS),
        AllOf((big, won, smb, moved), POS),
        AnyOf((big,), POS),
        AnyOf((big, won, smb), POS),
        Not(AnyOf((won, smb), POS), POS),
        AllOf((Not(big, POS), AnyOf((won, Not(moved, POS)), POS)), POS),
    ]
    states = [
        {"value": value, "status_label": label, "custom.cf_seg": seg}
        for value, label, seg in itertools.product((0, 9000), ("Won", "Lost"), ([], ["SMB"]))
    ]
    for tree, state in itertools.product(trees, states):
        for event in (
            make_event("created", data=state),
            make_event(data=state, previous_data={"status_label": "Lost"}),
        ):
            assert_agree(tree, event, METADATA, "UTC")


@pytest.mark.parametrize("folder", ["rules", "rules/examples"])
def test_plans_fire_what_the_interpreter_fires_on_the_shipped_cases(folder: str) -> None:
    """Over every case shipped with the rules, every rule against every event: the plan fires
    exactly the rules judge says fire, with the same parts, and gives the others a reason."""
    rule_names, test_names = discover(ROOT / folder)
    ruleset = load_rule_sources(read_sources(rule_names))
    events = [
        (case.event, case.metadata)
        for name, text in read_sources(test_names)
        for case in load_cases(
            text, name, read_event_file=lambda f: (ROOT / folder / f).read_text()
        )
    ]
    assert len(events) >= 10
    for event, metadata in events:
        for meta in (metadata, METADATA, None):
            plan = make_plan(ruleset, event, metadata=meta)
            verdicts = [judge(rule, event, metadata=meta) for rule in ruleset.rules]
            assert plan.fired == tuple(v.rule.name for v in verdicts if v.fired)
            assert dict(plan.reasons_not_fired) == {
                v.rule.name: v.reason for v in verdicts if not v.fired
            }
            for verdict in verdicts:
                if verdict.fired:
                    parts: list[Part] = []
                    compile_rule(verdict.rule).fire(Facts(event, meta), parts, {})
                    assert tuple(parts) == verdict.parts, verdict.rule.name


def test_rules_are_compiled_as_they_load_not_on_the_first_event() -> None:
    ruleset = load_rule_sources(read_sources(discover(ROOT / "rules")[0]))

    assert isinstance(ruleset.compiled, Compiled)
    assert compiled_rules(ruleset) is ruleset.compiled


@pytest.mark.parametrize(
    ("operator", "operand"),
    [
        ("eq", "Won"), ("eq", 10000), ("ne", "Won"), ("ne", None), ("in", ["SMB", "Won"]),
        ("in", [10000, "Won"]), ("not_in", ["SMB"]), ("not_in", [None, 1]), ("gt", 0),
        ("gte", 1.5), ("lt", 10), ("lte", -1), ("contains", "SMB"), ("not_contains", "x"),
        ("matches", "^W"), ("empty", True), ("older_than", 86400), ("newer_than", 60),
    ],
)  # fmt: skip
def test_plain_operands_compile_to_a_fast_form_not_the_interpreter(
    operator: str, operand: Any
) -> None:
    """The budget of a few microseconds per rule holds only if the interpreter is the
    fallback for dates and rarer operand shapes, not for the common ones."""
    predicate = compile_condition(Condition("value", operator, operand, POS), "UTC")

    assert "interpreted" not in predicate.__qualname__


def test_date_operands_fall_back_to_the_interpreter() -> None:
    predicate = compile_condition(Condition("date_won", "gt", DateExpr(0, "today"), POS), "UTC")

    assert "interpreted" in predicate.__qualname__
