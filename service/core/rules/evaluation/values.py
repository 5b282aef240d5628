"""How the engine compares and shows field values.

Numbers compare by value (1 == 1.0, but true is not 1), ISO dates and datetimes compare as
the moments they name, lists element by element.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from service.core.rules.evaluation.dates import parse_date_value
from service.core.rules.model import DateExpr, DateOfExpr, NowExpr, TemplateExpr

# Tuples, not `int | float`: that spelling builds a union object on every call, and these
# run for every comparison of every rule.
_NUMBER_TYPES = (int, float)
_SIZED_TYPES = (str, list, dict)


def is_number(value: Any) -> bool:
    """True for int and float, not for bool."""
    return isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool)


def values_equal(a: Any, b: Any) -> bool:
    """Equality as rules mean it: numeric-aware, date-aware, strict about types otherwise."""
    kind = type(a)
    if kind is type(b) and (kind is int or kind is float):
        return bool(a == b)  # the commonest case, without the general checks below
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str) and a != b:
        return _same_moment(a, b)
    return type(a) is type(b) and bool(a == b)


def same_members(a: list[Any], b: list[Any]) -> bool:
    """True when both lists hold the same values, in any order."""
    rest = list(b)
    for item in a:
        match = next((i for i, other in enumerate(rest) if values_equal(item, other)), None)
        if match is None:
            return False
        del rest[match]
    return not rest


def holds_value(values: list[Any], value: Any) -> bool:
    """True when one of `values` equals `value`."""
    return any(values_equal(item, value) for item in values)


def as_list(value: Any) -> list[Any]:
    """A multi-value field's values: null is none, a single value is a list of one."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def is_empty(value: Any) -> bool:
    """True for null, "", [] and {}."""
    return value is None or (isinstance(value, _SIZED_TYPES) and not value)


def show(value: Any) -> str:
    """A value as explanations print it: JSON-like, dates in ISO form."""
    if isinstance(value, DateExpr | DateOfExpr | NowExpr | TemplateExpr):
        return value.text
    if isinstance(value, date):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, default=str)


def _same_moment(a: str, b: str) -> bool:
    left, right = parse_date_value(a), parse_date_value(b)
    return left is not None and type(left) is type(right) and left == right
