"""`dealkeeper explain`: one event through the rules, told as an ops person reads it.

For every rule: fired or not, and why; for every condition: the values compared and the
result; then the one update a worker would send and every part left out of it (already
holds, overridden by a later rule, dry run, opportunity deleted). Pure: the command gets
the event, rules and metadata; this module only turns the explanation into lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from service.authoring.naming import readable_key
from service.core.events import Event, event_from_dict, event_from_envelope
from service.core.rules import (
    ConditionTrace,
    Explanation,
    Metadata,
    RuleSet,
    RuleTrace,
    explain_plan,
)
from service.core.rules.evaluation.actions import Part
from service.core.rules.evaluation.texts import MAX_TEXT_CHARS
from service.core.rules.evaluation.values import show
from service.core.rules.model import Plan, Truncated

INDENT = "  "


def event_from_json(text: str) -> Event:
    """An event from a webhook body (`{"event": {...}}`) or a bare event (as the log gives)."""
    data = json.loads(text)
    if isinstance(data, Mapping) and isinstance(data.get("event"), Mapping):
        return event_from_envelope(data)
    return event_from_dict(data)


def event_from_opportunity(opportunity: Mapping[str, Any], *, now: datetime) -> Event:
    """The opportunity as it is now, as a fresh `updated` event that changed nothing."""
    return Event(
        id="ev_explain_current_state",
        object_type="opportunity",
        action="updated",
        object_id=str(opportunity.get("id") or "oppo_unknown"),
        date_created=now,
        date_updated=now,
        data=dict(opportunity),
    )


class PayloadMissingError(ValueError):
    """The event came without its deal: there is nothing to judge."""


def explained(
    ruleset: RuleSet,
    event: Event,
    *,
    metadata: Metadata | None,
    rules_path: str,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """What `dealkeeper explain` prints for one event: the explanation, which rules and
    metadata judged it, and a note when an API key made the change. PayloadMissingError
    when the event has no deal to judge."""
    if event.payload_missing:
        raise PayloadMissingError(
            f"event {event.id} came without its {event.payload_key}: Close's event log shows "
            "it to a non-admin API key only for an hour. Read it with an admin's API key, or "
            f"use --opportunity {event.object_id} to explain the opportunity as it is now"
        )
    explanation = explain_plan(ruleset, event, metadata=metadata)
    context = (
        f"rules: {describe_rules(rules_path, ruleset)}; metadata: {describe_metadata(metadata)}"
    )
    lines = format_explanation(explanation, event=event, context=context, names=names)
    if event.api_key_id:
        lines.append(
            f"note: this change was made through API key {event.api_key_id}; if that is "
            "dealkeeper's own key, workers ignore the event (no loops)"
        )
    return lines


def describe_rules(path: str, ruleset: RuleSet) -> str:
    """Which rules: the path, how many and their digest."""
    return f"{path} ({len(ruleset.rules)} rules, digest {ruleset.digest})"


def describe_metadata(metadata: Metadata | None) -> str:
    """Where statuses and custom fields came from, if anywhere."""
    if metadata is None:
        return "none (CLOSE_API_KEY is not set: custom fields are matched by the names written)"
    fields = len(metadata.custom_fields)
    return f"from Close ({len(metadata.statuses)} statuses, {fields} custom fields)"


def format_explanation(
    explanation: Explanation,
    *,
    event: Event,
    context: str,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """The explanation as lines of text; `context` says which rules and metadata were used,
    `names` maps custom field ids to the names shown (see naming.field_names)."""
    names = names or {}
    lines = [*_header(event), context, ""]
    plan = explanation.plan
    if plan.ignored:
        return [*lines, f"ignored: {plan.ignored}; no rule is evaluated", *_footer()]
    for trace in explanation.rules:
        lines.extend(_rule(trace, names))
        lines.append("")
    lines.extend(_update(plan, explanation.contributors, names))
    return [*lines, *_footer()]


def _header(event: Event) -> list[str]:
    moment = event.date_created.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"event {event.id}: {event.name} of {event.object_id} at {moment}"]
    if event.action == "updated":
        changed = ", ".join(event.changed_fields) or "no field listed"
        lines.append(f"changed: {changed}")
    return lines


def _rule(trace: RuleTrace, names: Mapping[str, str]) -> list[str]:
    rule = trace.rule
    where = f"{rule.position.file}:{rule.position.line}"
    flags = " [dry run]" if rule.dry_run else ""
    if trace.fired:
        lines = [f"FIRED      {rule.name}{flags} ({where})"]
    else:
        lines = [f"not fired  {rule.name}{flags} ({where})", f"{INDENT}why: {trace.reason}"]
    if trace.condition.children:
        lines.extend(_conditions(trace.condition.children, depth=1))
    else:
        lines.append(f"{INDENT}no conditions: it fires on every event of its triggers")
    lines.extend(f"{INDENT}writes {_part(part, names)}" for part in trace.parts)
    return lines


def _conditions(traces: tuple[ConditionTrace, ...], *, depth: int) -> Iterator[str]:
    for trace in traces:
        mark = "yes" if trace.ok else "no "
        yield f"{INDENT * depth}{mark}  {_condition_text(trace)}"
        yield from _conditions(trace.children, depth=depth + 1)


def _condition_text(trace: ConditionTrace) -> str:
    where = f"  ({trace.position.file}:{trace.position.line}:{trace.position.column})"
    if trace.kind == "all":
        return "all of:"
    if trace.kind == "any":
        return "any of:" + where
    if trace.kind == "not":
        return "not:" + where
    if not trace.known:
        return f"{trace.field}: Close has no such custom field" + where
    if trace.changed is not None:
        moved = (
            f"went {trace.previous} -> {trace.value}"
            if trace.changed
            else f"is {trace.value} (unchanged)"
        )
        return f"{trace.field} {moved}; test: {trace.operator} {trace.operand}" + where
    return f"{trace.field} is {trace.value}; test: {trace.operator} {trace.operand}" + where


def _part(part: Part, names: Mapping[str, str]) -> str:
    sign = {"set": "=", "unset": "=", "add": "+=", "remove": "-="}[part.kind]
    key = readable_key(part.key, names)
    return f"{key} {sign} {show(part.value)} (now {show(part.current)})"


def _update(
    plan: Plan, contributors: Mapping[str, tuple[str, ...]], names: Mapping[str, str]
) -> list[str]:
    if plan.update:
        offset = (
            "" if plan.tz_offset_hours is None else f" with x-tz-offset {plan.tz_offset_hours:g}"
        )
        lines = [f"update: one PUT opportunity/{plan.opportunity_id}/{offset}"]
        for key, value in plan.update.items():
            rules = ", ".join(contributors.get(key, ())) or "?"
            shown = readable_key(key, names)
            sent = f"; sent as {key}" if shown != key else ""
            lines.append(f"{INDENT}{shown} = {show(value)}  (from {rules}{sent})")
    else:
        lines = ["update: none; nothing to send, so no call to Close"]
    lines.extend(_left_out(plan, names))
    return lines


def _left_out(plan: Plan, names: Mapping[str, str]) -> list[str]:
    lines = []
    if plan.dropped:
        lines.append("left out of the update:")
        lines.extend(
            f"{INDENT}{readable_key(d.field, names)} from {d.rule}: {d.reason}"
            for d in plan.dropped
        )
    for c in plan.conflicts:
        key = readable_key(c.field, names)
        lines.append(
            f"conflict: {key}: '{c.earlier_rule}' wrote {show(c.earlier_value)}, "
            f"'{c.later_rule}' wrote {show(c.later_value)} and won (the later rule wins)"
        )
    if plan.dry_run_update:
        lines.append("dry run (logged by the worker, never sent):")
        lines.extend(
            f"{INDENT}{readable_key(k, names)} = {show(v)}" for k, v in plan.dry_run_update.items()
        )
    if plan.unresolved:
        lines.append(f"unresolved in Close's metadata: {', '.join(plan.unresolved)}")
    lines.extend(_cut(cut, names) for cut in plan.truncated)
    return lines


def _cut(cut: Truncated, names: Mapping[str, str]) -> str:
    before = " (before the change)" if cut.previous else ""
    return (
        f"cut: rules read the first {MAX_TEXT_CHARS} of the {cut.length} characters of "
        f"{readable_key(cut.field, names)}{before}"
    )


def _footer() -> list[str]:
    return ["", "(explain only reads: nothing was written to Close)"]
