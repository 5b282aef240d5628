"""`validate --online`: the names and values rules use, checked against the live organization.

Offline, `custom.Segment` and `status: Won` are only text. With Close's metadata at hand
this checks that every custom field exists (by name or id), that values used with a
choices field are among its choices, that status labels and ids exist in some pipeline,
and that add/remove only go to fields that hold several values. Each problem says what
Close has instead, with a suggestion when one is close.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from service.config.errors import Problem
from service.core.rules.evaluation.fields import condition_leaves, custom_ref
from service.core.rules.model import Action, Condition, CustomField, Metadata, Position, RuleSet
from service.core.rules.suggest import closest

# Operators whose operands are values the field holds (or one of its values).
_VALUE_OPERATORS = frozenset(
    {"eq", "ne", "in", "not_in", "changed_from", "changed_to", "contains", "not_contains"}
)
_LABEL_FIELDS = frozenset({"status", "status_label"})
_SHOWN_CHOICES = 12


def check_against_close(ruleset: RuleSet, metadata: Metadata) -> list[Problem]:
    """Every name or value in the rules that the organization does not have, by position."""
    found: list[Problem] = []
    for rule in ruleset.rules:
        for test in condition_leaves(rule.condition):
            found.extend(_check_test(test, metadata))
        for action in rule.actions:
            found.extend(_check_action(action, metadata))
    return sorted(set(found))


def _check_test(test: Condition, metadata: Metadata) -> Iterator[Problem]:
    values = _texts(test.operand) if test.operator in _VALUE_OPERATORS else []
    yield from _check_field_values(test.field, values, test.position, metadata)


def _check_action(action: Action, metadata: Metadata) -> Iterator[Problem]:
    values = _texts(action.value) if action.kind != "unset" else []
    yield from _check_field_values(action.field, values, action.position, metadata)
    name = custom_ref(action.field)
    known = metadata.custom_field(name) if name is not None else None
    if known is None or known.accepts_multiple_values:
        return
    if action.kind in ("add", "remove"):
        message = (
            f"custom field '{known.name}' holds one value, so {action.kind} cannot be used; "
            f"write set: {{{action.field}: ...}} instead"
        )
        yield _problem(action.position, message)
    elif isinstance(action.value, list):
        message = f"custom field '{known.name}' holds one value; found a list for set"
        yield _problem(action.position, message)


def _check_field_values(
    field: str, values: list[str], where: Position, metadata: Metadata
) -> Iterator[Problem]:
    name = custom_ref(field)
    if name is not None:
        yield from _check_custom(name, values, where, metadata)
    elif field in _LABEL_FIELDS:
        labels = sorted({s.label for s in metadata.statuses})
        yield from _check_known("status label", values, labels, where)
    elif field == "status_id":
        yield from _check_known("status id", values, [s.id for s in metadata.statuses], where)
    elif field == "pipeline_id":
        pipelines = sorted({s.pipeline_id for s in metadata.statuses if s.pipeline_id})
        yield from _check_known("pipeline id", values, pipelines, where)


def _check_custom(
    name: str, values: list[str], where: Position, metadata: Metadata
) -> Iterator[Problem]:
    known = metadata.custom_field(name)
    if known is None:
        yield _problem(where, _unknown_custom(name, metadata.custom_fields))
    elif known.choices is not None:
        what = f"choice of custom field '{known.name}'"
        yield from _check_known(what, values, list(known.choices), where)


def _unknown_custom(name: str, fields: tuple[CustomField, ...]) -> str:
    names = [f.name for f in fields]
    guess = closest(name, [*names, *(f.id for f in fields)])
    message = f"Close has no opportunity custom field named '{name}'"
    if guess is not None:
        return f"{message}; did you mean '{guess}'?"
    return f"{message}; it has {_listed(names)}" if names else f"{message}; it has none"


def _check_known(
    what: str, values: list[str], known: list[str], where: Position
) -> Iterator[Problem]:
    for value in values:
        if value not in known:
            guess = closest(value, known)
            hint = f"did you mean '{guess}'?" if guess else f"Close has {_listed(known)}"
            yield _problem(where, f"'{value}' is not a {what} in Close; {hint}")


def _texts(value: Any) -> list[str]:
    """The plain text values of an operand or action value (not dates, templates, numbers)."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_CHOICES])
    return shown + (
        f" and {len(names) - _SHOWN_CHOICES} more" if len(names) > _SHOWN_CHOICES else ""
    )


def _problem(where: Position, message: str) -> Problem:
    return Problem(where.file, where.line, where.column, message)
