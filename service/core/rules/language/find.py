"""A sweep's `find`: filters Close's list endpoint applies, parsed and turned into parameters.

    find: {status_type: active, date_updated: {older_than: 60d}}
    -> status_type=active&date_updated__lte=<the sweep's moment - 60 days, in UTC>

Relative dates (`older_than`, `newer_than`, `today-30d`) are fixed from the sweep's
scheduled moment in the rule's zone, never from the clock, and each bound selects exactly
the deals the same test in `if` would hold for: `older_than` is "at least that long ago",
and a date bound on a datetime field is placed at the zone's midnight. The engine checks
the same tests on each deal again (find_conditions), when it is listed and when its job
re-reads it, so a deal that left the set meanwhile is not written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from service.core.rules import spec
from service.core.rules.evaluation.dates import as_local_date, resolve_date_expr
from service.core.rules.evaluation.values import is_number
from service.core.rules.language.fieldcheck import check_choices
from service.core.rules.language.operands import operand
from service.core.rules.language.yamlnodes import STR_TAG, Report, describe, mapping_items, position
from service.core.rules.model import Condition, DateExpr, FindFilter
from service.core.rules.suggest import unknown

_FILTER_LIST = "one of " + ", ".join(spec.FIND_FILTERS)
_NOT_FILTERABLE = "Close's list endpoint cannot filter on {field}; list with find and test it in if"
_LOWER = ("gt", "gte")


def parse_find(node: Node, report: Report) -> tuple[FindFilter, ...]:
    """The filters of a `find` mapping; every mistake is reported."""
    if not isinstance(node, MappingNode):
        example = "{status_type: active}"
        report.add(
            node, f"find needs a mapping of filters such as {example}; found {describe(node)}"
        )
        return ()
    filters: list[FindFilter] = []
    for name, key_node, value_node in mapping_items(node, report):
        known = spec.FIND_FILTERS.get(name)
        if known is None:
            report.add(key_node, _unknown_filter(name))
            continue
        filters.extend(_filters(known, key_node, value_node, report))
    return tuple(filters)


def _unknown_filter(name: str) -> str:
    if name in spec.OPPORTUNITY_FIELDS or name.startswith(spec.CUSTOM_PREFIX):
        return _NOT_FILTERABLE.format(field=name)
    return unknown("filter", name, spec.FIND_FILTERS, _FILTER_LIST)


def _filters(
    known: spec.FilterSpec, key_node: Node, node: Node, report: Report
) -> list[FindFilter]:
    where = position(key_node, report.file)
    if not isinstance(node, MappingNode):
        value = _bare(known, node, report)
        return [] if value is None else [FindFilter(known.name, "eq", value, where)]
    if not known.operators:
        report.add(node, f"{known.name} needs text; found {describe(node)}")
        return []
    found = []
    for op, op_node, operand_node in mapping_items(node, report):
        if op not in known.operators:
            expected = "one of " + ", ".join(known.operators)
            report.add(
                op_node, unknown(f"operator for {known.name}", op, known.operators, expected)
            )
            continue
        value = _operand(known, op, operand_node, report)
        if value is not None:
            found.append(FindFilter(known.name, op, value, where))
    return found


def _bare(known: spec.FilterSpec, node: Node, report: Report) -> str | None:
    if known.kind == "date":
        example = "{older_than: 60d} or {gte: 2026-01-01}"
        report.add(node, f"{known.name} needs a range such as {example}; found {describe(node)}")
        return None
    return _text(known, node, report)


def _text(known: spec.FilterSpec, node: Node, report: Report) -> str | None:
    if not (isinstance(node, ScalarNode) and node.tag == STR_TAG and node.value.strip()):
        report.add(node, f"{known.name} needs text; found {describe(node)}")
        return None
    if not check_choices(known.name, str(node.value), node, report):
        return None
    return str(node.value)


def _operand(known: spec.FilterSpec, op: str, node: Node, report: Report) -> Any:
    if op == "eq":
        return _text(known, node, report)
    if op == "in":
        return _texts(known, node, report)
    value = operand(spec.OPERATORS[op], node, report)
    if op not in ("older_than", "newer_than") and is_number(value):
        needs = spec.OPERAND_DESCRIPTIONS["ordered"].split(", ", 1)[1]
        report.add(node, f"{known.name} {op} needs {needs}; found {describe(node)}")
        return None
    return value


def _texts(known: spec.FilterSpec, node: Node, report: Report) -> list[str] | None:
    if not isinstance(node, SequenceNode) or not node.value:
        report.add(node, f"in needs a non-empty list of values; found {describe(node)}")
        return None
    values = [_text(known, item, report) for item in node.value]
    if any(value is None for value in values):
        return None
    texts = [str(value) for value in values]
    if any("," in text for text in texts):
        report.add(node, "Close separates the values of in with commas; a value cannot hold one")
        return None
    return texts


def find_conditions(filters: tuple[FindFilter, ...]) -> tuple[Condition, ...]:
    """The filters as conditions the engine checks on each deal, so a deal that left the
    sweep's set between listing and its job (someone moved or edited it) is not written.
    `query` and `lead_saved_search_id` only Close can apply: they are left out."""
    return tuple(
        Condition(f.name, f.operator, f.operand, f.position)
        for f in filters
        if spec.FIND_FILTERS[f.name].kind != "text"
    )


def find_params(filters: tuple[FindFilter, ...], *, moment: datetime, tz: str) -> dict[str, str]:
    """Close's query parameters for the filters, relative dates fixed from `moment` in `tz`.

    Two bounds that land on one parameter keep the narrower."""
    params: dict[str, Any] = {}
    for key, value in (pair for f in filters for pair in _params(f, moment=moment, tz=tz)):
        params[key] = _narrower(key, params[key], value) if key in params else value
    return {key: _format(value) for key, value in params.items()}


def _params(f: FindFilter, *, moment: datetime, tz: str) -> Iterator[tuple[str, Any]]:
    known = spec.FIND_FILTERS[f.name]
    if f.operator == "eq":
        yield known.param, f.operand
    elif f.operator == "in":
        yield f"{known.param}__in", ",".join(f.operand)
    else:
        yield _bound(known.param, f.operator, f.operand, moment=moment, tz=tz)


def _bound(param: str, op: str, operand: Any, *, moment: datetime, tz: str) -> tuple[str, Any]:
    if op in ("older_than", "newer_than"):
        cutoff = moment - timedelta(seconds=operand)
        # older_than holds when the field is at or before the cutoff; newer_than after it.
        op, operand = ("lte", cutoff) if op == "older_than" else ("gt", cutoff)
    if isinstance(operand, DateExpr):
        operand = resolve_date_expr(operand, moment=moment, tz=tz)
    if param == "date_won":  # a calendar date in Close
        return f"{param}__{op}", as_local_date(operand, tz)
    if isinstance(operand, datetime):
        return f"{param}__{op}", operand.astimezone(UTC)
    return _day_bound(param, op, operand, tz)


def _day_bound(param: str, op: str, day: date, tz: str) -> tuple[str, datetime]:
    """A date bound on a datetime field, as the zone's midnights: `gt` 5 May is from the
    start of 6 May, `lte` 5 May until the start of 6 May."""
    start = day + timedelta(days=1) if op in ("gt", "lte") else day
    midnight = datetime.combine(start, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return f"{param}__{'gte' if op in _LOWER else 'lt'}", midnight


def _narrower(key: str, a: Any, b: Any) -> Any:
    if key.endswith(("__gt", "__gte")):
        return max(a, b)
    if key.endswith(("__lt", "__lte")):
        return min(a, b)
    return b  # the same exact filter twice cannot happen: mapping keys are unique


def _format(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
