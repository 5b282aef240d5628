"""Can two rules fire on the same event? Read from their top-level conditions alone.

Each rule's `if` list pins some fields: `status_type: won` allows one value, `ne`/`not_in`
rule values out, `empty` allows or rules out the empty ones, `gt`/`gte`/`lt`/`lte` bound a
number. Two rules whose pins on one field leave no value in common never fire together
(`status_type: won` and `status_type: lost`; `value: {gte: 5000000}` and `{lt: 5000000}`).
Anything less certain counts as "may fire together", so warnings err on the side of saying.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from service.core.rules.evaluation.values import is_number, show
from service.core.rules.model import AllOf, Condition, DateExpr, Rule

EMPTY_VALUES = frozenset({"null", '""', "[]"})
# One field under several names: status is read as its label.
_SAME_FIELD = {"status_label": "status", "status_id": "status"}


def same_field(name: str) -> str:
    """The name a field goes by here, so `status` and `status_label` are one."""
    return _SAME_FIELD.get(name, name)


@dataclass(frozen=True)
class Bound:
    """One end of a numeric range."""

    value: float
    inclusive: bool


@dataclass(frozen=True)
class Pin:
    """What a rule's top-level conditions allow for one field."""

    allowed: frozenset[str] | None = None  # None: any value
    forbidden: frozenset[str] = frozenset()
    low: Bound = Bound(-math.inf, False)
    high: Bound = Bound(math.inf, False)


def excluded(a: Rule, b: Rule, *, ignoring: frozenset[str]) -> bool:
    """True when the rules pin some field (not in `ignoring`) to values that exclude each other."""
    pins_a, pins_b = pins(a.condition), pins(b.condition)
    shared = (pins_a.keys() & pins_b.keys()) - ignoring
    return any(is_exclusive(pins_a[field], pins_b[field]) for field in shared)


def pins(condition: AllOf) -> dict[str, Pin]:
    """The pins of a rule's `if` list (any/not are not read: they pin nothing for sure)."""
    found: dict[str, Pin] = {}
    for test in _all_of(condition):
        pin = pin_of(test)
        if pin is not None:
            field = same_field(test.field)
            found[field] = narrow(found.get(field), pin)
    return found


def _all_of(condition: AllOf) -> list[Condition]:
    """The field tests that must all hold: the list's, and those of mappings inside it."""
    tests: list[Condition] = []
    for node in condition.conditions:
        if isinstance(node, Condition):
            tests.append(node)
        elif isinstance(node, AllOf):
            tests.extend(_all_of(node))
    return tests


def pin_of(test: Condition) -> Pin | None:
    """What one field test allows, or None when it pins nothing this module understands."""
    if isinstance(test.operand, DateExpr):
        return None
    values = test.operand if isinstance(test.operand, list) else [test.operand]
    shown = frozenset(show(v) for v in values)
    if test.operator in ("eq", "in", "changed_to"):
        return Pin(allowed=shown)
    if test.operator in ("ne", "not_in"):
        return Pin(forbidden=shown)
    if test.operator == "empty":
        return Pin(allowed=EMPTY_VALUES) if test.operand else Pin(forbidden=EMPTY_VALUES)
    if test.operator in ("gt", "gte") and is_number(test.operand):
        return Pin(low=Bound(float(test.operand), test.operator == "gte"))
    if test.operator in ("lt", "lte") and is_number(test.operand):
        return Pin(high=Bound(float(test.operand), test.operator == "lte"))
    return None


def narrow(old: Pin | None, new: Pin) -> Pin:
    """Both pins at once."""
    if old is None:
        return new
    if old.allowed is None or new.allowed is None:
        allowed = old.allowed if new.allowed is None else new.allowed
    else:
        allowed = old.allowed & new.allowed
    return replace(
        old,
        allowed=allowed,
        forbidden=old.forbidden | new.forbidden,
        low=max(old.low, new.low, key=lambda b: (b.value, not b.inclusive)),
        high=min(old.high, new.high, key=lambda b: (b.value, b.inclusive)),
    )


def is_exclusive(a: Pin, b: Pin) -> bool:
    """True when no value satisfies both pins."""
    both = narrow(a, b)
    if both.allowed is not None and both.allowed <= both.forbidden:
        return True
    low, high = both.low, both.high
    if low.value > high.value:
        return True
    return low.value == high.value and not (low.inclusive and high.inclusive)
