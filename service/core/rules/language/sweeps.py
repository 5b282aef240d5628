"""Sweep rules: `schedule` and `find` parsed, and what only sweep (or only event) rules say.

A rule with `schedule` and `find` is a sweep rule. It never fires on Close's events, and
rules without them never fire in a sweep: a sweep rule's trigger is `sweep:<its name>`,
which only the events of its own sweep carry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from yaml.nodes import Node, ScalarNode

from service.core.events import SWEEP_TRIGGER_PREFIX
from service.core.rules import spec
from service.core.rules.cron import CRON_HINT, CronSchedule, next_occurrence, parse_cron
from service.core.rules.evaluation.fields import condition_leaves
from service.core.rules.language.find import parse_find
from service.core.rules.language.yamlnodes import STR_TAG, Report, describe, position
from service.core.rules.model import DateOfExpr, Position, Rule, Sweep

Fields = dict[str, tuple[Node, Node]]
# Any fixed moment does to ask whether a schedule ever runs; the engine reads no clock.
_ANY_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)


def sweep_trigger(name: str) -> str:
    """The trigger of sweep rule `name`: only its own sweep's events carry it."""
    return SWEEP_TRIGGER_PREFIX + name


def is_sweep_rule(fields: Fields) -> bool:
    """True when the rule's mapping makes it a sweep rule."""
    return "schedule" in fields or "find" in fields


def parse_sweep(fields: Fields, report: Report) -> Sweep | None:
    """`schedule` and `find` of a sweep rule; both are needed."""
    schedule_field, find_field = fields.get("schedule"), fields.get("find")
    if schedule_field is None and find_field is not None:
        report.add(find_field[0], f"a sweep rule needs schedule, {CRON_HINT}; it is missing")
    if find_field is None and schedule_field is not None:
        hint = "the filters that list its opportunities, such as {status_type: active}"
        report.add(schedule_field[0], f"a sweep rule needs find, {hint}; it is missing")
    filters = parse_find(find_field[1], report) if find_field is not None else ()
    schedule = parse_schedule(schedule_field[1], report) if schedule_field is not None else None
    if schedule_field is None or schedule is None:
        return None
    return Sweep(schedule, filters, position(schedule_field[0], report.file))


def parse_schedule(node: Node, report: Report) -> CronSchedule | None:
    """The cron schedule; each mistake is placed at its own field of the text."""
    if not (isinstance(node, ScalarNode) and node.tag == STR_TAG):
        report.add(node, f"schedule needs {CRON_HINT} (in quotes); found {describe(node)}")
        return None
    schedule, problems = parse_cron(str(node.value))
    quote = 1 if node.style in ("'", '"') else 0
    where = position(node, report.file)
    for problem in problems:
        report.add_at(where.line, where.column + quote + problem.offset, problem.message)
    if schedule is not None and next_occurrence(schedule, after=_ANY_MOMENT, tz="UTC") is None:
        report.add(node, f"schedule '{node.value}' never runs: no month has such a day")
        return None
    return schedule


def check_sweep_rule(rule: Rule, fields: Fields, report: Report) -> None:
    """A sweep rule runs on its schedule and sees states, not changes."""
    for key in ("trigger", "on"):
        if key in fields:
            message = f"a sweep rule runs on its schedule, not on events; remove {key}"
            report.add(fields[key][0], message)
    for leaf in condition_leaves(rule.condition):
        if leaf.operator in spec.CHANGE_OPERATORS:
            message = (
                f"{leaf.operator} never holds in a sweep: a sweep sees each deal as it is, "
                f"not a change; test the value itself, such as {leaf.field}: ..."
            )
            report.add_at(leaf.position.line, leaf.position.column, message)


def check_event_rule(rule: Rule, report: Report) -> None:
    """Fields only sweeps know are reported in rules that run on events."""
    for field, where in _fields_read(rule):
        if field in spec.SWEEP_ONLY_FIELDS:
            message = (
                f"{field} is known to sweeps only (read from Close's status-change activity); "
                "a rule on events sees the change itself: status_type: {changed_to: won}"
            )
            report.add_at(where.line, where.column, message)


def _fields_read(rule: Rule) -> list[tuple[str, Position]]:
    found = [(leaf.field, leaf.position) for leaf in condition_leaves(rule.condition)]
    for action in rule.actions:
        if isinstance(action.value, DateOfExpr):
            found.extend((field, action.position) for field in action.value.fields)
    return found
