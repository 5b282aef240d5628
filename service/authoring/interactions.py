"""Warnings about rules that work against each other, found by reading the rules alone.

- Two rules write one field with different values: when both fire, the later one wins,
  which is rarely what both authors meant.
- A rule writes a value that can satisfy another rule's condition on that field: the two
  can feed each other (a ping-pong risk). dealkeeper ignores events its own writes cause,
  so the second rule will not fire from that write, which surprises authors just as much.

Pairs that can never fire together are left alone: disjoint triggers, or conditions pinning
one field to values that exclude each other (see exclusion.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from service.authoring.exclusion import excluded, same_field
from service.core.events import Event
from service.core.rules.evaluation.conditions import OPERATORS, Scope, Subject
from service.core.rules.evaluation.fields import condition_leaves
from service.core.rules.evaluation.values import show, values_equal
from service.core.rules.model import (
    Action,
    Condition,
    DateExpr,
    NowExpr,
    Position,
    Rule,
    RuleSet,
    TemplateExpr,
)

UPDATED = "opportunity.updated"
# Operators whose outcome on a write cannot be known from the rules alone.
_UNKNOWABLE = frozenset({"changed_from", "older_than", "newer_than"})
# Stands in for an event when trying a written value against a condition; only date
# operands read its moment, and those are treated as "could hold" before it is used.
_PROBE_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
_PROBE = Event("ev_probe", "opportunity", "updated", "oppo_probe", _PROBE_MOMENT, _PROBE_MOMENT)


@dataclass(frozen=True, order=True)
class RuleWarning:
    """Something that loads but probably is not what was meant."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: warning: {self.message}"


def find_interactions(ruleset: RuleSet) -> list[RuleWarning]:
    """Every conflicting-write and ping-pong warning for the rules in force, by position."""
    rules = [rule for rule in ruleset.rules if rule.enabled]
    found = [w for a, b in combinations(rules, 2) for w in _conflicting_writes(a, b)]
    found += [w for a in rules for b in rules if a is not b for w in _ping_pong(a, b)]
    return sorted(set(found))


def _conflicting_writes(earlier: Rule, later: Rule) -> Iterator[RuleWarning]:
    shared_trigger = set(earlier.triggers) & set(later.triggers)
    # A dry-run rule's parts are merged apart from the live ones: they never meet in a write.
    if earlier.dry_run != later.dry_run or not shared_trigger:
        return
    if excluded(earlier, later, ignoring=frozenset()):
        return
    for first in earlier.actions:
        for second in later.actions:
            if same_field(first.field) == same_field(second.field) and _differ(first, second):
                message = (
                    f"rules '{earlier.name}' ({_at(first.position)}) and '{later.name}' both "
                    f"write {second.field}, with {_written(first)} and {_written(second)}; "
                    f"when both fire, '{later.name}' (the later one) wins"
                )
                yield _warning(second.position, message)


def _ping_pong(writer: Rule, reader: Rule) -> Iterator[RuleWarning]:
    # The writer's own conditions still hold after its write, except on what it writes.
    written = frozenset(same_field(action.field) for action in writer.actions)
    if writer.dry_run or UPDATED not in reader.triggers:
        return  # a dry-run rule writes nothing; a created-only rule never sees the echo
    if excluded(writer, reader, ignoring=written):
        return
    for action in writer.actions:
        field = same_field(action.field)
        for test in condition_leaves(reader.condition):
            if same_field(test.field) == field and _can_satisfy(action, test, reader.timezone):
                message = (
                    f"rule '{writer.name}' writes {action.field} = {_written(action)}, which can "
                    f"satisfy the condition {test.field} {test.operator} {show(test.operand)} of "
                    f"rule '{reader.name}' ({_at(test.position)}): a ping-pong risk; dealkeeper "
                    f"ignores the event its own write causes, so '{reader.name}' will not fire "
                    "from it"
                )
                yield _warning(action.position, message)
                break


def _differ(first: Action, second: Action) -> bool:
    kinds = {first.kind, second.kind}
    if kinds <= {"set", "unset"}:
        return not _same_value(first.value, second.value)
    if kinds == {"add", "remove"}:
        return _same_value(first.value, second.value)  # one adds what the other removes
    return bool(kinds & {"set", "unset"})  # a whole list against one value of it


def _same_value(a: Any, b: Any) -> bool:
    dynamic = (DateExpr, NowExpr, TemplateExpr)
    if isinstance(a, dynamic) or isinstance(b, dynamic):
        return type(a) is type(b) and show(a) == show(b)
    return values_equal(a, b)


def _written(action: Action) -> str:
    if action.kind == "unset":
        return "nothing (unset)"
    prefix = {"set": "", "add": "+", "remove": "-"}[action.kind]
    return prefix + show(action.value)


def _can_satisfy(action: Action, test: Condition, timezone: str) -> bool:
    """Could this write be what makes the field test hold on the event it causes?"""
    if test.operator == "changed":
        return test.operand is True
    if action.kind in ("add", "remove"):
        return _list_write_satisfies(action, test)
    if test.operator in _UNKNOWABLE or isinstance(test.operand, DateExpr):
        return True
    if isinstance(action.value, DateExpr | NowExpr | TemplateExpr | list):
        return test.operator != "empty" or test.operand is False
    subject = Subject(value=action.value, changed=True, old=None)
    return OPERATORS[test.operator](subject, test.operand, Scope(_PROBE, None, timezone))


def _list_write_satisfies(action: Action, test: Condition) -> bool:
    adding = action.kind == "add"
    if test.operator in ("contains", "not_contains"):
        wanted = adding == (test.operator == "contains")
        return wanted and values_equal(action.value, test.operand)
    if test.operator == "empty":
        return test.operand is not adding  # adding fills the field; removing may empty it
    return True


def _at(where: Position) -> str:
    return f"{where.file}:{where.line}"


def _warning(where: Position, message: str) -> RuleWarning:
    return RuleWarning(where.file, where.line, where.column, message)
