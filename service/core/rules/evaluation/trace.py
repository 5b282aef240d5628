"""explain_plan: make_plan's answer, plus how every rule and every condition came to it.

`dealkeeper explain` prints this. The plan inside is make_plan's own result, so an
explanation can never disagree with what a worker would do; the traces beside it evaluate
every condition (not only up to the first that fails) and show the values compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from service.core.events import Event
from service.core.rules.evaluation.actions import Part
from service.core.rules.evaluation.conditions import Scope, inspect
from service.core.rules.evaluation.engine import make_plan
from service.core.rules.evaluation.values import show
from service.core.rules.evaluation.verdicts import judge
from service.core.rules.model import (
    AllOf,
    AnyOf,
    Condition,
    ConditionNode,
    Metadata,
    Plan,
    Position,
    Rule,
    RuleSet,
)


@dataclass(frozen=True)
class ConditionTrace:
    """One node of a rule's condition tree, evaluated."""

    kind: str  # "test", "all", "any" or "not"
    ok: bool
    position: Position
    field: str = ""  # the rest is for kind "test"
    operator: str = ""
    operand: str = ""  # as shown: "1000000", "today-30d (2026-10-29)", "90d"
    value: str = ""  # the field's value in the event, as shown
    previous: str | None = None  # the value before, for changed / changed_from / changed_to
    changed: bool | None = None
    known: bool = True  # False: a custom field Close's metadata does not list
    children: tuple[ConditionTrace, ...] = ()


@dataclass(frozen=True)
class RuleTrace:
    """One rule: whether it fired, why not, its conditions, and what it would write."""

    rule: Rule
    fired: bool
    reason: str  # why it did not fire ("" when it fired)
    condition: ConditionTrace
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """make_plan's plan for the event, and a trace per rule (none for an ignored event)."""

    plan: Plan
    rules: tuple[RuleTrace, ...] = ()
    contributors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # key -> rules


def explain_plan(
    ruleset: RuleSet,
    event: Event,
    *,
    metadata: Metadata | None,
    own_api_key_ids: frozenset[str] = frozenset(),
) -> Explanation:
    """The plan make_plan makes for `event`, with a trace of every rule and condition."""
    plan = make_plan(ruleset, event, metadata=metadata, own_api_key_ids=own_api_key_ids)
    if plan.ignored:
        return Explanation(plan)
    traces = tuple(_trace_rule(rule, event, metadata) for rule in ruleset.rules)
    return Explanation(plan, traces, _contributors(plan, traces))


def _trace_rule(rule: Rule, event: Event, metadata: Metadata | None) -> RuleTrace:
    verdict = judge(rule, event, metadata=metadata)
    condition = trace_condition(rule.condition, Scope(event, metadata, rule.timezone))
    return RuleTrace(rule, verdict.fired, verdict.reason, condition, verdict.parts)


def trace_condition(node: ConditionNode, scope: Scope) -> ConditionTrace:
    """Every node of the tree evaluated, children included, with the values compared."""
    if isinstance(node, Condition):
        return _trace_test(node, scope)
    if isinstance(node, AllOf | AnyOf):
        children = tuple(trace_condition(child, scope) for child in node.conditions)
        results = [child.ok for child in children]
        if isinstance(node, AllOf):
            return ConditionTrace("all", all(results), node.position, children=children)
        return ConditionTrace("any", any(results), node.position, children=children)
    inner = trace_condition(node.condition, scope)
    return ConditionTrace("not", not inner.ok, node.position, children=(inner,))


def _trace_test(condition: Condition, scope: Scope) -> ConditionTrace:
    found = inspect(condition, scope)
    subject = found.subject
    watches_change = condition.operator.startswith("changed")
    return ConditionTrace(
        kind="test",
        ok=found.ok,
        position=condition.position,
        field=condition.field,
        operator=condition.operator,
        operand=found.operand,
        value=show(subject.value) if subject else "",
        previous=show(subject.old) if subject and watches_change else None,
        changed=subject.changed if subject and watches_change else None,
        known=subject is not None,
    )


def _contributors(plan: Plan, traces: tuple[RuleTrace, ...]) -> dict[str, tuple[str, ...]]:
    """For each key of the update, the rules whose parts it carries."""
    overridden = {(d.field, d.rule) for d in plan.dropped}
    found: dict[str, tuple[str, ...]] = {}
    for key in plan.update:
        base = _base_key(key)
        rules = [
            t.rule.name
            for t in traces
            if t.fired and not t.rule.dry_run
            for p in t.parts
            if p.key == base and (base, t.rule.name) not in overridden
        ]
        found[key] = tuple(dict.fromkeys(rules))
    return found


def _base_key(key: str) -> str:
    for ending in (".add", ".remove"):
        if key.endswith(ending):
            return key[: -len(ending)]
    return key
