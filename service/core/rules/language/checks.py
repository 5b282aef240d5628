"""A rules file's `report:` section: checks that `dealkeeper report` counts, never acts on.

    report:
      - name: open-deals-without-value
        find: {status_type: active}
        if:
          - value: {empty: true}

A check is a sweep rule without schedule and then: `find` lists deals exactly as a sweep's
does, and the deals its `if` holds for fail the check. Each check becomes a rule with no
actions and a trigger of its own (sweep_trigger of its name), so the report judges deals
with the engine's compiled conditions, as a sweep does, and no event ever runs it.
"""

from __future__ import annotations

from collections.abc import Callable

from yaml.nodes import MappingNode, Node, SequenceNode

from service.core.rules import spec
from service.core.rules.language.clauses import parse_conditions
from service.core.rules.language.find import find_conditions, parse_find
from service.core.rules.language.sweeps import check_sweep_rule, sweep_trigger
from service.core.rules.language.yamlnodes import (
    Report,
    check_keys,
    describe,
    mapping_items,
    position,
)
from service.core.rules.model import AllOf, ReportCheck, Rule

# Keys of a rule that a check must not have, each with what to do instead.
_RULE_ONLY = {
    "then": "report checks only count the deals that fail them; remove then (a sweep rule,"
    " under rules: with a schedule, changes deals)",
    "schedule": "report checks run when `dealkeeper report` runs; remove schedule",
    "trigger": "report checks judge deals as they are now, not events; remove trigger",
    "on": "report checks judge deals as they are now, not events; remove on",
    "enabled": "a report check is always counted; remove enabled",
    "dry_run": "a report check never writes; remove dry_run",
}
TextOf = Callable[..., str | None]
ZoneOf = Callable[[tuple[Node, Node] | None, str, Report], str]


def parse_report(
    node: Node, file_timezone: str, report: Report, *, text: TextOf, zone: ZoneOf
) -> list[ReportCheck]:
    """The checks of a `report:` list; every mistake is reported with its position."""
    if not isinstance(node, SequenceNode):
        report.add(node, f"report must be a list of checks; found {describe(node)}")
        return []
    parsed = (_check(item, file_timezone, report, text=text, zone=zone) for item in node.value)
    return [check for check in parsed if check is not None]


def _check(
    node: Node, file_timezone: str, report: Report, *, text: TextOf, zone: ZoneOf
) -> ReportCheck | None:
    if not isinstance(node, MappingNode):
        report.add(
            node, f"a report check must be a mapping with name, find and if; found {describe(node)}"
        )
        return None
    items = mapping_items(node, report)
    for key, key_node, _ in items:
        if key in _RULE_ONLY:  # said why, not "unknown key"
            report.add(key_node, _RULE_ONLY[key])
    kept = [item for item in items if item[0] not in _RULE_ONLY]
    known = check_keys(kept, list(spec.REPORT_CHECK_KEYS), report)
    fields = {key: (key_node, value_node) for key, key_node, value_node in known}
    for key in ("name", "find"):
        if key not in fields:
            report.add(node, f"a report check needs the key '{key}'; it is missing")
    where = position(node, report.file)
    name = text(fields.get("name"), "name", report) or ""
    filters = parse_find(fields["find"][1], report) if "find" in fields else ()
    found = parse_conditions(fields["if"][1], report) if "if" in fields else AllOf((), where)
    rule = Rule(
        name=name,
        triggers=(sweep_trigger(name),),
        condition=AllOf((*find_conditions(filters), *found.conditions), found.position),
        actions=(),
        timezone=zone(fields.get("timezone"), file_timezone, report),
        position=where,
    )
    check_sweep_rule(rule, fields, report)  # changed* never holds for a deal as it is
    description = text(fields.get("description"), "description", report, empty_ok=True) or ""
    return ReportCheck(name, filters, rule, description) if name else None
