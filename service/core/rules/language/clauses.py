"""The `if` and `then` parts of a rule: YAML nodes -> condition trees and actions.

Every mistake is reported with its position; what parses is returned so that checking goes
on and all problems of a file come out at once.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from service.core.rules import spec
from service.core.rules.evaluation.dates import (
    DATE_OF_HINT,
    is_date_expr_attempt,
    is_date_of_attempt,
    parse_date_of,
)
from service.core.rules.evaluation.templates import compile_template, is_template
from service.core.rules.language.fieldcheck import (
    VALUE_OPERATORS,
    check_choices,
    check_field,
    check_writable,
    is_custom,
)
from service.core.rules.language.operands import MISFIT, date_expr, operand, plain_value
from service.core.rules.language.yamlnodes import STR_TAG, Report, describe, mapping_items, position
from service.core.rules.model import (
    Action,
    ActionKind,
    AllOf,
    AnyOf,
    Condition,
    ConditionNode,
    DateOfExpr,
    Not,
    NowExpr,
)
from service.core.rules.suggest import unknown

_OPERATOR_LIST = "one of " + ", ".join(spec.OPERATORS)
_ACTION_LIST = "one of " + ", ".join(spec.ACTIONS)
_WRITE_KINDS: dict[str, ActionKind] = {"set": "set", "add": "add", "remove": "remove"}


def parse_conditions(node: Node, report: Report) -> AllOf:
    """A rule's `if`: a list of conditions (or one mapping), all of which must hold."""
    if isinstance(node, MappingNode):
        items: list[Node] = [node]
    elif isinstance(node, SequenceNode):
        items = list(node.value)
    else:
        report.add(node, f"if needs a list of conditions; found {describe(node)}")
        items = []
    parsed = (_condition(item, report) for item in items)
    return AllOf(tuple(c for c in parsed if c is not None), position(node, report.file))


def _condition(node: Node, report: Report) -> ConditionNode | None:
    if not isinstance(node, MappingNode) or not node.value:
        example = "{status_type: won}"
        report.add(node, f"a condition must be a mapping such as {example}; found {describe(node)}")
        return None
    parts: list[ConditionNode] = []
    for key, key_node, value_node in mapping_items(node, report):
        if key == "any":
            parts.extend(_any(value_node, report))
        elif key == "not":
            parts.extend(_not(value_node, report))
        else:
            parts.extend(_field_tests(key, key_node, value_node, report))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts), position(node, report.file))


def _any(node: Node, report: Report) -> list[ConditionNode]:
    if not isinstance(node, SequenceNode) or not node.value:
        report.add(node, f"any needs a non-empty list of conditions; found {describe(node)}")
        return []
    parsed = (_condition(item, report) for item in node.value)
    return [AnyOf(tuple(c for c in parsed if c is not None), position(node, report.file))]


def _not(node: Node, report: Report) -> list[ConditionNode]:
    where = position(node, report.file)
    if isinstance(node, SequenceNode) and node.value:
        return [Not(parse_conditions(node, report), where)]
    if isinstance(node, MappingNode):
        inner = _condition(node, report)
        return [] if inner is None else [Not(inner, where)]
    report.add(node, f"not needs a condition (a mapping) or a list of them; found {describe(node)}")
    return []


def _field_tests(field: str, key_node: Node, node: Node, report: Report) -> list[ConditionNode]:
    if not check_field(field, key_node, report):
        return []
    where = position(key_node, report.file)
    if isinstance(node, SequenceNode):
        hint = "write {in: [...]} to test membership or {eq: [...]} to compare a whole list"
        report.add(node, f"a list after '{field}' is ambiguous; {hint}")
        return []
    if not isinstance(node, MappingNode):
        value = operand(spec.OPERATORS["eq"], node, report)
        check_choices(field, value, node, report)
        return [Condition(field, "eq", value, where)]
    if not node.value:
        report.add(node, f"'{field}' needs at least one operator; found an empty mapping")
    tests: list[ConditionNode] = []
    for op, op_node, operand_node in mapping_items(node, report):
        if op not in spec.OPERATORS:
            report.add(op_node, unknown("operator", op, spec.OPERATORS, _OPERATOR_LIST))
            continue
        value = operand(spec.OPERATORS[op], operand_node, report)
        if op in VALUE_OPERATORS:
            check_choices(field, value, operand_node, report)
        tests.append(Condition(field, op, value, where))
    return tests


def parse_actions(node: Node, report: Report) -> tuple[Action, ...]:
    """A rule's `then`: a non-empty list of actions, in order."""
    if not isinstance(node, SequenceNode) or not node.value:
        report.add(node, f"then needs a non-empty list of actions; found {describe(node)}")
        return ()
    return tuple(action for item in node.value for action in _action_item(item, report))


def _action_item(node: Node, report: Report) -> list[Action]:
    if not isinstance(node, MappingNode) or not node.value:
        report.add(node, f"an action needs {_ACTION_LIST}; found {describe(node)}")
        return []
    actions: list[Action] = []
    for kind, kind_node, value_node in mapping_items(node, report):
        if kind == "unset":
            actions.extend(_unset(value_node, report))
        elif kind in _WRITE_KINDS:
            actions.extend(_writes(_WRITE_KINDS[kind], value_node, report))
        else:
            report.add(kind_node, unknown("action", kind, spec.ACTIONS, _ACTION_LIST))
    return actions


def _unset(node: Node, report: Report) -> list[Action]:
    fields = node.value if isinstance(node, SequenceNode) and node.value else [node]
    if not all(isinstance(f, ScalarNode) and f.tag == STR_TAG for f in fields):
        report.add(
            node, f"unset needs a list of field names (or one field name); found {describe(node)}"
        )
        return []
    return [
        Action("unset", str(f.value), None, position(f, report.file))
        for f in fields
        if _clearable(str(f.value), f, report) and check_writable(str(f.value), f, report)
    ]


def _clearable(field: str, node: Node, report: Report) -> bool:
    if field == "status":
        report.add(node, "status cannot be unset; an opportunity always has a status")
        return False
    return True


def _writes(kind: ActionKind, node: Node, report: Report) -> list[Action]:
    if not isinstance(node, MappingNode) or not node.value:
        example = "{custom.Segment: Enterprise}" if kind != "set" else "{confidence: 100}"
        found = describe(node)
        report.add(
            node, f"{kind} needs a mapping of fields to values such as {example}; found {found}"
        )
        return []
    actions = []
    for field, key_node, value_node in mapping_items(node, report):
        if not _writable(kind, field, key_node, report):
            continue
        value = _write_value(kind, field, value_node, report)
        if value is not MISFIT:
            actions.append(Action(kind, field, value, position(key_node, report.file)))
    return actions


def _writable(kind: ActionKind, field: str, node: Node, report: Report) -> bool:
    if kind == "set":
        return check_writable(field, node, report)
    if spec.ACTIONS[kind].custom_only and field.strip() and not field.startswith("custom."):
        hint = "multi-value custom fields (custom.NAME)"
        report.add(node, f"{kind} only works on {hint}; found '{field}'")
        return False
    return check_field(field, node, report)


def _write_value(kind: ActionKind, field: str, node: Node, report: Report) -> Any:
    value = plain_value(node, report)
    if value is MISFIT or (kind != "set" and _lacks_value(value)):
        found = describe(node)
        needs = (
            "a value or a list of values"
            if kind == "set"
            else "a value or a list of values, not null,"
        )
        report.add(node, f"{kind} needs {needs} for '{field}'; found {found}")
        return MISFIT
    if kind == "set" and not check_choices(field, value, node, report):
        return MISFIT
    if isinstance(value, list):
        value = [_write_text(kind, item, node, report) for item in value]
    else:
        value = _write_text(kind, value, node, report)
    return value if _settable(field, value, node, report) else MISFIT


def _write_text(kind: ActionKind, value: Any, node: Node, report: Report) -> Any:
    """Templates anywhere; `now` and `today...` as whole values of set."""
    if not isinstance(value, str):
        return value
    if is_template(value):
        compiled, problems = compile_template(value)
        for problem in problems:
            report.add(node, problem)
        return compiled
    if kind == "set" and value == "now":
        return NowExpr()
    if kind == "set" and is_date_expr_attempt(value):
        return date_expr(value, node, report)
    if kind == "set" and is_date_of_attempt(value):
        return _date_of(value, node, report)
    return value


def _date_of(text: str, node: Node, report: Report) -> DateOfExpr | None:
    """`date_of(a, b)`: each field must be one that holds a date (or a custom field)."""
    names = parse_date_of(text)
    if names is None:
        report.add(node, f"invalid date_of '{text}'; expected {DATE_OF_HINT}")
        return None
    dated = [n for n in names if is_custom(n) or _is_dated(n)]
    for name in names:
        if name not in dated and check_field(name, node, report):
            report.add(node, f"date_of needs date fields; {name} holds no date")
    return DateOfExpr(names, text.strip()) if len(dated) == len(names) else None


def _is_dated(name: str) -> bool:
    known = spec.OPPORTUNITY_FIELDS.get(name)
    return known is not None and known.type in ("date", "datetime")


def _settable(field: str, value: Any, node: Node, report: Report) -> bool:
    if field == "status" and not isinstance(value, str):
        report.add(node, f"status needs a status label such as Won; found {describe(node)}")
        return False
    return True


def _lacks_value(value: Any) -> bool:
    """add/remove need something to add: not null, not an empty list, no null inside."""
    values = value if isinstance(value, list) else [value]
    return not values or None in values
