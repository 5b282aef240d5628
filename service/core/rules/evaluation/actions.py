"""A fired rule's actions -> parts of the update, in Close's own keys and values.

`set: {status: Won}` becomes `status_id` in the opportunity's pipeline, custom field names
become `custom.cf_...` ids, `today`/`now` become the event's date in the rule's zone, and
templates are rendered from the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from service.core.events import Event
from service.core.rules.evaluation.dates import (
    as_local_date,
    parse_date_value,
    resolve_date_expr,
    utc_iso,
)
from service.core.rules.evaluation.fields import STATUS_FIELD, custom_ref, field_ref
from service.core.rules.evaluation.templates import TemplateRenderError, render_template
from service.core.rules.model import (
    Action,
    ActionKind,
    DateExpr,
    DateOfExpr,
    Metadata,
    NowExpr,
    Rule,
    TemplateExpr,
)


class Part(NamedTuple):
    """One write of one rule: a key of Close's PUT body, and the value it holds now.

    A NamedTuple, not a frozen dataclass: one is made per write of every rule that fires on
    every event, and a tuple is made in a third of the time (immutable and hashable all the
    same)."""

    rule: str
    kind: ActionKind
    key: str  # "date_won", "status_id", "custom.cf_abc" (without .add/.remove)
    value: Any
    current: Any


@dataclass(frozen=True)
class Resolved:
    """A rule's parts, or why they cannot be written."""

    parts: tuple[Part, ...] = ()
    failures: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()


def resolve_actions(rule: Rule, *, event: Event, metadata: Metadata | None) -> Resolved:
    """The parts of every action of `rule`, or every reason one cannot be resolved."""
    results = [_resolve(action, rule, event, metadata) for action in rule.actions]
    return Resolved(
        parts=tuple(part for r in results for part in r.parts),
        failures=tuple(failure for r in results for failure in r.failures),
        unresolved=tuple(name for r in results for name in r.unresolved),
    )


def _resolve(action: Action, rule: Rule, event: Event, metadata: Metadata | None) -> Resolved:
    if action.field == STATUS_FIELD and action.kind == "set":
        return _status(action, rule, event, metadata)
    ref = field_ref(action.field, metadata)
    name = custom_ref(action.field)
    if ref is None:
        return Resolved(failures=(f"unknown custom field '{name}'",), unresolved=(str(name),))
    known = metadata.custom_field(name) if metadata is not None and name is not None else None
    if action.kind in ("add", "remove") and known is not None and not known.accepts_multiple_values:
        return Resolved(failures=(f"custom field '{name}' does not accept multiple values",))
    current = ref.read(event.state)
    values = (
        action.value if action.kind != "set" and isinstance(action.value, list) else [action.value]
    )
    try:
        written = [_written(v, rule, event, metadata) for v in values]
    except (TemplateRenderError, UnavailableValueError) as e:
        return Resolved(failures=(str(e),))
    return Resolved(parts=tuple(Part(rule.name, action.kind, ref.key, v, current) for v in written))


def _status(action: Action, rule: Rule, event: Event, metadata: Metadata | None) -> Resolved:
    label = str(action.value)
    if metadata is None:
        current = event.state.get("status_label")
        return Resolved(parts=(Part(rule.name, "set", STATUS_FIELD, label, current),))
    pipeline = event.state.get("pipeline_id")
    status = metadata.status_for_label(label, pipeline)
    if status is None:
        where = f" in pipeline {pipeline}" if pipeline else ""
        return Resolved(failures=(f"unknown status '{label}'{where}",), unresolved=(label,))
    current = event.state.get("status_id")
    return Resolved(parts=(Part(rule.name, "set", "status_id", status.id, current),))


class UnavailableValueError(ValueError):
    """A value read from the opportunity (date_of) is not there: the rule does not fire."""


def _written(value: Any, rule: Rule, event: Event, metadata: Metadata | None) -> Any:
    if isinstance(value, list):
        return [_written(item, rule, event, metadata) for item in value]
    if isinstance(value, DateOfExpr):
        return _date_of(value, event, metadata, rule.timezone)
    if isinstance(value, TemplateExpr):
        return render_template(value, event=event, timezone=rule.timezone)
    if isinstance(value, DateExpr):
        return resolve_date_expr(value, moment=event.date_created, tz=rule.timezone).isoformat()
    if isinstance(value, NowExpr):
        return utc_iso(event.date_created)
    return value


def _date_of(expr: DateOfExpr, event: Event, metadata: Metadata | None, tz: str) -> str:
    """The local date of the first of the fields that holds a date or a datetime."""
    for field in expr.fields:
        ref = field_ref(field, metadata)
        found = parse_date_value(ref.read(event.state)) if ref is not None else None
        if found is not None:
            return as_local_date(found, tz).isoformat()
    raise UnavailableValueError(f"{expr.text}: none of {', '.join(expr.fields)} holds a date")
