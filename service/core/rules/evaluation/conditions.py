"""The operator table and the evaluation of condition trees against an event.

Every evaluation returns an Outcome: whether it holds, and a sentence saying why, such as
`value 5000 gte 1000000 is false (rules/x.yaml:10:9)`, which ends up in the plan's
reasons for rules that did not fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from service.core.events import Event
from service.core.rules.evaluation.dates import (
    as_local_date,
    as_moment,
    format_duration,
    parse_date_value,
    resolve_date_expr,
)
from service.core.rules.evaluation.fields import FieldRef, field_ref, has_changed, previous_value
from service.core.rules.evaluation.patterns import compile_pattern
from service.core.rules.evaluation.texts import cap_text
from service.core.rules.evaluation.values import (
    holds_value,
    is_empty,
    is_number,
    show,
    values_equal,
)
from service.core.rules.model import AllOf, AnyOf, Condition, ConditionNode, DateExpr, Metadata


@dataclass(frozen=True)
class Outcome:
    """Whether a condition holds, and why."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class Scope:
    """What conditions are evaluated against: the event, Close's metadata, the rule's zone."""

    event: Event
    metadata: Metadata | None
    timezone: str


@dataclass(frozen=True)
class Subject:
    """The field a condition tests, as this event shows it."""

    value: Any
    changed: bool
    old: Any


Operator = Callable[[Subject, Any, Scope], bool]


def evaluate(node: ConditionNode, scope: Scope) -> Outcome:
    """Whether the tree holds for the scope's event, with the first reason it does not."""
    if isinstance(node, Condition):
        return check(node, scope)
    if isinstance(node, AllOf):
        return _all_of(node, scope)
    if isinstance(node, AnyOf):
        return _any_of(node, scope)
    inner = evaluate(node.condition, scope)
    return Outcome(not inner.ok, f"not ({inner.detail})")


def _all_of(node: AllOf, scope: Scope) -> Outcome:
    outcomes = []
    for child in node.conditions:
        outcome = evaluate(child, scope)
        if not outcome.ok:
            return outcome
        outcomes.append(outcome)
    return Outcome(True, " and ".join(o.detail for o in outcomes) or "no conditions")


def _any_of(node: AnyOf, scope: Scope) -> Outcome:
    outcomes = [evaluate(child, scope) for child in node.conditions]
    held = next((o for o in outcomes if o.ok), None)
    if held is not None:
        return held
    return Outcome(False, "none of: " + "; ".join(o.detail for o in outcomes))


def check(condition: Condition, scope: Scope) -> Outcome:
    """One field test."""
    ref = field_ref(condition.field, scope.metadata)
    if ref is None:
        name = condition.field.removeprefix("custom.")
        return Outcome(False, f"unknown custom field '{name}' ({condition.position})")
    subject = subject_of(ref, scope.event)
    ok = OPERATORS[condition.operator](subject, condition.operand, scope)
    return Outcome(ok, _explain(condition, subject, ok, scope))


@dataclass(frozen=True)
class Inspection:
    """One field test taken apart, for explanations: what was compared, and the result."""

    ok: bool
    subject: Subject | None  # None: a custom field the metadata does not know
    operand: str  # as shown, date expressions with the date they stand for
    detail: str


def inspect(condition: Condition, scope: Scope) -> Inspection:
    """The field test with the values it compared (same result as `check`)."""
    outcome = check(condition, scope)
    ref = field_ref(condition.field, scope.metadata)
    subject = None if ref is None else subject_of(ref, scope.event)
    return Inspection(outcome.ok, subject, _show_operand(condition, scope), outcome.detail)


def subject_of(ref: FieldRef, event: Event) -> Subject:
    """The field at `ref` as `event` shows it: its value, whether it changed, and from what
    (texts cut to what rules read; whether it changed is judged on the whole values)."""
    changed = has_changed(event, ref)
    return Subject(cap_text(ref.read(event.state)), changed, cap_text(previous_value(event, ref)))


def _explain(condition: Condition, subject: Subject, ok: bool, scope: Scope) -> str:
    verdict = f"{condition.operator} {_show_operand(condition, scope)} is {str(ok).lower()}"
    if condition.operator.startswith("changed"):
        moved = f"changed from {show(subject.old)} to {show(subject.value)}"
        what = moved if subject.changed else f"unchanged ({show(subject.value)})"
        return f"{condition.field} {what}; {verdict} ({condition.position})"
    return f"{condition.field} {show(subject.value)} {verdict} ({condition.position})"


def _show_operand(condition: Condition, scope: Scope) -> str:
    operand = condition.operand
    if isinstance(operand, DateExpr):
        return f"{operand.text} ({_resolve(operand, scope).isoformat()})"
    if condition.operator in ("older_than", "newer_than"):
        return format_duration(operand)
    return show(operand)


def _resolve(operand: Any, scope: Scope) -> Any:
    if isinstance(operand, DateExpr):
        return resolve_date_expr(operand, moment=scope.event.date_created, tz=scope.timezone)
    return operand


def _eq(subject: Subject, operand: Any, scope: Scope) -> bool:
    if isinstance(operand, DateExpr):
        return _compare(subject.value, operand, scope) == 0
    return values_equal(subject.value, operand)


def _ne(subject: Subject, operand: Any, scope: Scope) -> bool:
    return not _eq(subject, operand, scope)


def _in(subject: Subject, operand: Any, scope: Scope) -> bool:
    return holds_value(operand, subject.value)


def _not_in(subject: Subject, operand: Any, scope: Scope) -> bool:
    return not holds_value(operand, subject.value)


def _compare(value: Any, operand: Any, scope: Scope) -> int | None:
    """-1, 0 or 1 comparing value to operand; None when they are not comparable."""
    target = _resolve(operand, scope)
    if is_number(target):
        return _sign(value - target) if is_number(value) else None
    found = parse_date_value(value)
    if found is None or not isinstance(target, date):
        return None
    if isinstance(target, datetime):
        return _sign((as_moment(found, scope.timezone) - target).total_seconds())
    return _sign((as_local_date(found, scope.timezone) - target).days)


def _sign(number: float) -> int:
    return (number > 0) - (number < 0)


def _ordering(accept: tuple[int, ...], subject: Subject, operand: Any, scope: Scope) -> bool:
    """gt, gte, lt, lte: the comparison's sign is one of `accept`."""
    return _compare(subject.value, operand, scope) in accept


def _contains(subject: Subject, operand: Any, scope: Scope) -> bool:
    if isinstance(subject.value, list):
        return holds_value(subject.value, operand)
    if isinstance(subject.value, str):
        return str(operand) in subject.value
    return False


def _not_contains(subject: Subject, operand: Any, scope: Scope) -> bool:
    return not _contains(subject, operand, scope)


def _matches(subject: Subject, operand: Any, scope: Scope) -> bool:
    if subject.value is None:
        return False
    texts = subject.value if isinstance(subject.value, list) else [subject.value]
    search = compile_pattern(operand).search
    return any(search(str(text)) for text in texts)


def _empty(subject: Subject, operand: Any, scope: Scope) -> bool:
    return is_empty(subject.value) is operand


def _changed(subject: Subject, operand: Any, scope: Scope) -> bool:
    return subject.changed is operand


def _one_of(value: Any, operand: Any) -> bool:
    return (
        holds_value(operand, value) if isinstance(operand, list) else values_equal(value, operand)
    )


def _changed_from(subject: Subject, operand: Any, scope: Scope) -> bool:
    return subject.changed and _one_of(subject.old, operand)


def _changed_to(subject: Subject, operand: Any, scope: Scope) -> bool:
    return subject.changed and _one_of(subject.value, operand)


def _age(subject: Subject, scope: Scope) -> timedelta | None:
    found = parse_date_value(subject.value)
    if found is None:
        return None
    return scope.event.date_created - as_moment(found, scope.timezone)


def _older_than(subject: Subject, operand: Any, scope: Scope) -> bool:
    age = _age(subject, scope)
    return age is not None and age >= timedelta(seconds=operand)


def _newer_than(subject: Subject, operand: Any, scope: Scope) -> bool:
    age = _age(subject, scope)
    return age is not None and age < timedelta(seconds=operand)


OPERATORS: dict[str, Operator] = {
    "eq": _eq,
    "ne": _ne,
    "in": _in,
    "not_in": _not_in,
    "gt": partial(_ordering, (1,)),
    "gte": partial(_ordering, (1, 0)),
    "lt": partial(_ordering, (-1,)),
    "lte": partial(_ordering, (-1, 0)),
    "contains": _contains,
    "not_contains": _not_contains,
    "matches": _matches,
    "empty": _empty,
    "changed": _changed,
    "changed_from": _changed_from,
    "changed_to": _changed_to,
    "older_than": _older_than,
    "newer_than": _newer_than,
}
