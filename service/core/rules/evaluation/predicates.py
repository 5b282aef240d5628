"""Condition trees compiled into predicates: Facts -> bool, with no explanation built.

conditions.py interprets a tree and explains every test as it goes; make_plan only needs to
know whether a rule holds, for a thousand rules per event. So each field test is compiled
once, with its rule, into one closure that has already done what does not depend on the
event: the key it reads, the regular expression, the set of texts `in` looks in, the
duration as a timedelta. A test with no fast form here (date operands, rarer operand
shapes) runs the interpreter's own operator, so the answers always agree with conditions.py.
The closures are written out per operator, not composed from smaller ones: one Python call
per test is what the budget of a few microseconds per rule allows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import timedelta
from functools import partial
from typing import Any

from service.core.rules.evaluation.conditions import OPERATORS, subject_of
from service.core.rules.evaluation.dates import parse_date_value
from service.core.rules.evaluation.facts import Facts, value_key
from service.core.rules.evaluation.fields import custom_ref, has_changed, previous_value
from service.core.rules.evaluation.patterns import PatternError, compile_pattern
from service.core.rules.evaluation.texts import cap_text
from service.core.rules.evaluation.values import holds_value, is_number, values_equal
from service.core.rules.model import AllOf, AnyOf, Condition, ConditionNode, DateExpr

Predicate = Callable[[Facts], bool]
Check = Callable[[Any], bool]  # a test of one value
# Builds a field test from the key of Facts.values it reads, its operand and the rule's zone;
# None when the operand has no fast form.
Builder = Callable[[Hashable, Any, str], Predicate | None]

_NUMBER = (int, float)
_SIZED = (str, list, dict)


def compile_condition(node: ConditionNode, timezone: str) -> Predicate:
    """A predicate true exactly when `evaluate(node, ...)` says ok, for a rule in `timezone`."""
    if isinstance(node, Condition):
        return _field_test(node, timezone)
    if isinstance(node, AllOf):
        return _all_of(tuple(compile_condition(child, timezone) for child in node.conditions))
    if isinstance(node, AnyOf):
        return _any_of(tuple(compile_condition(child, timezone) for child in node.conditions))
    inner = compile_condition(node.condition, timezone)
    return lambda facts: not inner(facts)


def _all_of(tests: tuple[Predicate, ...]) -> Predicate:
    # Rules have one to three conditions as a rule: spelt out, they save a loop per rule.
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda facts: first(facts) and second(facts)
    if len(tests) == 3:
        first, second, third = tests
        return lambda facts: first(facts) and second(facts) and third(facts)
    return lambda facts: all(test(facts) for test in tests)


def _any_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 1:
        return tests[0]
    return lambda facts: any(test(facts) for test in tests)


def _field_test(condition: Condition, timezone: str) -> Predicate:
    build = _BUILDERS.get(condition.operator)
    key = value_key(condition.field)
    test = build(key, condition.operand, timezone) if build is not None else None
    if test is None:
        test = _CHANGE_TESTS.get(condition.operator, _interpreted)(condition, timezone)
    if custom_ref(condition.field) is None:
        return test
    field, fast = condition.field, test
    # A custom field the metadata does not know holds nothing, whatever the operator.
    return lambda facts: facts.ref(field) is not None and fast(facts)


def _interpreted(condition: Condition, timezone: str) -> Predicate:
    """The interpreter's own operator, for tests without a fast form."""
    field, operator, operand = condition.field, condition.operator, condition.operand

    def interpreted(facts: Facts) -> bool:
        ref = facts.ref(field)
        if ref is None:
            return False
        subject = subject_of(ref, facts.event)
        return OPERATORS[operator](subject, operand, facts.scope(timezone))

    return interpreted


# Checks of one value, shared by the tests of the current value and of changes.


def _is_plain_text(value: Any) -> bool:
    """Text that names no date: values_equal holds two different texts equal only as one
    moment, so such text equals exactly the same text."""
    return type(value) is str and parse_date_value(value) is None


def _equals(operand: Any) -> Check:
    """values_equal(value, operand)."""
    if _is_plain_text(operand):
        return lambda value: type(value) is str and value == operand
    return lambda value: values_equal(value, operand)


def _member_of(values: list[Any]) -> Check:
    """holds_value(values, value)."""
    if all(_is_plain_text(v) for v in values):
        texts = frozenset(values)
        return lambda value: type(value) is str and value in texts
    return lambda value: holds_value(values, value)


def _one_of(operand: Any) -> Check:
    """What changed_from and changed_to compare with: one value or a list of them."""
    return _member_of(operand) if isinstance(operand, list) else _equals(operand)


# Tests of the current value. The commonest forms read and compare in one closure.


def _eq(key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    if isinstance(operand, DateExpr):
        return None
    if _is_plain_text(operand):
        return lambda facts: type(value := facts.values[key]) is str and value == operand
    same = _equals(operand)
    return lambda facts: same(facts.values[key])


def _ne(key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    if isinstance(operand, DateExpr):
        return None
    if _is_plain_text(operand):
        return lambda facts: type(value := facts.values[key]) is not str or value != operand
    same = _equals(operand)
    return lambda facts: not same(facts.values[key])


def _in(key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    if not isinstance(operand, list):
        return None
    if all(_is_plain_text(v) for v in operand):
        texts = frozenset(operand)
        return lambda facts: type(value := facts.values[key]) is str and value in texts
    member = _member_of(operand)
    return lambda facts: member(facts.values[key])


def _not_in(key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    if not isinstance(operand, list):
        return None
    if all(_is_plain_text(v) for v in operand):
        texts = frozenset(operand)
        return lambda facts: type(value := facts.values[key]) is not str or value not in texts
    member = _member_of(operand)
    return lambda facts: not member(facts.values[key])


def _ordering(name: str, key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    """gt, gte, lt, lte against a number; the interpreter compares dates and date
    expressions. It compares the sign of value - operand, which for NaN counts as equal:
    hence `not d < 0` rather than `d >= 0` for gte."""
    if not is_number(operand):
        return None
    holds = _DIFFERENCE_TESTS[name]

    def compare(facts: Facts) -> bool:
        value = facts.values[key]
        if not isinstance(value, _NUMBER) or isinstance(value, bool):
            return False
        return holds(value - operand)

    return compare


_DIFFERENCE_TESTS: dict[str, Callable[[Any], bool]] = {
    "gt": lambda difference: difference > 0,
    "gte": lambda difference: not difference < 0,
    "lt": lambda difference: difference < 0,
    "lte": lambda difference: not difference > 0,
}


def _contains(key: Hashable, operand: Any, timezone: str) -> Predicate:
    text = str(operand)

    def contains(facts: Facts) -> bool:
        value = facts.values[key]
        if isinstance(value, list):
            return holds_value(value, operand)
        return isinstance(value, str) and text in value

    return contains


def _not_contains(key: Hashable, operand: Any, timezone: str) -> Predicate:
    contains = _contains(key, operand, timezone)
    return lambda facts: not contains(facts)


def _matches(key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    if not isinstance(operand, str):
        return None
    try:
        search = compile_pattern(operand).search
    except PatternError:
        return None  # the interpreter raises it, when (and if) the test is reached

    def matches(facts: Facts) -> bool:
        value = facts.values[key]
        if value is None:
            return False
        if isinstance(value, list):
            return any(search(str(text)) for text in value)
        return search(str(value))

    return matches


def _empty(key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    if not isinstance(operand, bool):
        return None

    def empty(facts: Facts) -> bool:
        value = facts.values[key]
        return (value is None or (isinstance(value, _SIZED) and not value)) is operand

    return empty


def _aged(older: bool, key: Hashable, operand: Any, timezone: str) -> Predicate | None:
    """older_than (at least this long before the event) or newer_than (less than that)."""
    if not is_number(operand):
        return None
    limit = timedelta(seconds=operand)

    def aged(facts: Facts) -> bool:
        age = facts.age(facts.values[key], timezone)
        return age is not None and (age >= limit) is older

    return aged


_BUILDERS: dict[str, Builder] = {
    "eq": _eq,
    "ne": _ne,
    "in": _in,
    "not_in": _not_in,
    # Bound when a rule is compiled, not when this module loads: one call per rule's
    # condition, never per event.
    "gt": partial(_ordering, "gt"),
    "gte": partial(_ordering, "gte"),
    "lt": partial(_ordering, "lt"),
    "lte": partial(_ordering, "lte"),
    "contains": _contains,
    "not_contains": _not_contains,
    "matches": _matches,
    "empty": _empty,
    "older_than": partial(_aged, True),
    "newer_than": partial(_aged, False),
}


# Tests of a change: they read the event's previous data and changed fields too.


def _changed(condition: Condition, timezone: str) -> Predicate:
    field, wanted = condition.field, condition.operand

    def changed(facts: Facts) -> bool:
        ref = facts.ref(field)
        return ref is not None and has_changed(facts.event, ref) is wanted

    return changed


def _changed_from(condition: Condition, timezone: str) -> Predicate:
    field, was = condition.field, _one_of(condition.operand)

    def changed_from(facts: Facts) -> bool:
        ref = facts.ref(field)
        if ref is None or not has_changed(facts.event, ref):
            return False
        return was(cap_text(previous_value(facts.event, ref)))

    return changed_from


def _changed_to(condition: Condition, timezone: str) -> Predicate:
    field, key, now = condition.field, value_key(condition.field), _one_of(condition.operand)

    def changed_to(facts: Facts) -> bool:
        ref = facts.ref(field)
        if ref is None or not has_changed(facts.event, ref):
            return False
        return now(facts.values[key])

    return changed_to


_CHANGE_TESTS: dict[str, Callable[[Condition, str], Predicate]] = {
    "changed": _changed,
    "changed_from": _changed_from,
    "changed_to": _changed_to,
}
