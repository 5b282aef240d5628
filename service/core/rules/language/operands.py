"""Operands of field tests: each operator's kind of operand, checked and converted.

`gte: 1000000` stays a number, `lt: today-30d` becomes a DateExpr, `older_than: 90d` becomes
seconds, `matches` must compile with RE2 (patterns.py). A misfit is reported saying what the
operator needs.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import Node, ScalarNode, SequenceNode

from service.core.rules import spec
from service.core.rules.evaluation.dates import (
    DATE_EXPR_HINT,
    is_date_expr_attempt,
    parse_date_expr,
    parse_date_value,
    parse_duration,
)
from service.core.rules.evaluation.patterns import PatternError, compile_pattern
from service.core.rules.evaluation.values import is_number
from service.core.rules.language.yamlnodes import Report, describe, scalar_value
from service.core.rules.model import DateExpr


def operand(op: spec.OperatorSpec, node: Node, report: Report) -> Any:
    """The operand of `op`, checked against its kind; None (reported) when it does not fit."""
    value = plain_value(node, report)
    checked = _OPERAND_CHECKS[op.operand](value, node, report)
    if checked is MISFIT:
        report.add(
            node, f"{op.name} needs {spec.OPERAND_DESCRIPTIONS[op.operand]}; found {describe(node)}"
        )
        return None
    return checked


MISFIT = object()  # an operand of the wrong kind, reported by the caller


def plain_value(node: Node, report: Report) -> Any:
    """Scalars and lists of scalars as Python values; a mapping (or nesting) as MISFIT."""
    if isinstance(node, ScalarNode):
        return scalar_value(node, report)
    if isinstance(node, SequenceNode) and all(isinstance(n, ScalarNode) for n in node.value):
        return [scalar_value(n, report) for n in node.value]
    return MISFIT


def _value(value: Any, node: Node, report: Report) -> Any:
    if isinstance(value, str) and is_date_expr_attempt(value):
        return date_expr(value, node, report)
    return value


def _values(value: Any, node: Node, report: Report) -> Any:
    return value if isinstance(value, list) else MISFIT


def _one_or_more(value: Any, node: Node, report: Report) -> Any:
    return value


def _ordered(value: Any, node: Node, report: Report) -> Any:
    if is_number(value):
        return value
    if isinstance(value, str) and is_date_expr_attempt(value):
        return date_expr(value, node, report)
    parsed = parse_date_value(value) if isinstance(value, str) else None
    return MISFIT if parsed is None else parsed


def _member(value: Any, node: Node, report: Report) -> Any:
    return value if isinstance(value, str | int | float) else MISFIT


def _regex(value: Any, node: Node, report: Report) -> Any:
    if not isinstance(value, str):
        return MISFIT
    try:
        compile_pattern(value)
    except PatternError as e:
        report.add(node, str(e))
        return None
    return value


def _boolean(value: Any, node: Node, report: Report) -> Any:
    return value if isinstance(value, bool) else MISFIT


def _duration(value: Any, node: Node, report: Report) -> Any:
    seconds = parse_duration(value) if isinstance(value, str) else None
    return MISFIT if seconds is None else seconds


_OPERAND_CHECKS = {
    "value": _value,
    "values": _values,
    "one_or_more": _one_or_more,
    "ordered": _ordered,
    "member": _member,
    "regex": _regex,
    "boolean": _boolean,
    "duration": _duration,
}


def date_expr(text: str, node: Node, report: Report) -> DateExpr | None:
    """The date expression `text`; a malformed one is reported."""
    expr = parse_date_expr(text)
    if expr is None:
        report.add(node, f"invalid date expression '{text}'; expected {DATE_EXPR_HINT}")
    return expr
