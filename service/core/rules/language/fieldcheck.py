"""Field names and fixed values in rules, checked against Close's opportunity as spec.py lists it.

`stauts_type` is reported with a suggestion, writing `status_type` (which Close computes)
is refused with what to write instead, and `status_type: Won` is caught before it silently
never matches. Custom fields (`custom.NAME`) are always accepted here: only the live
organization knows them (`dealkeeper validate --online`).
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import Node

from service.core.rules import spec
from service.core.rules.language.yamlnodes import Report
from service.core.rules.suggest import closest, unknown

FIELD_HINT = "a Close opportunity field such as value, status_type or date_won, or custom.NAME"
# Operators whose operand is a value the field itself would hold.
VALUE_OPERATORS = frozenset({"eq", "ne", "in", "not_in", "changed_from", "changed_to"})
_INSTEAD = {
    "status_label": "set status (a label) or status_id",
    "status_type": "set status (a label) or status_id",
    "status_display_name": "set status (a label) or status_id",
    "pipeline_name": "set pipeline_id",
    "user_name": "set user_id",
    "contact_name": "set contact_id",
    "lead_name": "set lead_id",
}


def is_custom(field: str) -> bool:
    """True for `custom.NAME` and `custom.cf_ID`."""
    return field.startswith(spec.CUSTOM_PREFIX)


def check_field(field: str, node: Node, report: Report) -> bool:
    """True for a field rules may name; otherwise the mistake is reported."""
    if not field.strip():
        expected = "expected a field such as value or custom.NAME"
        report.add(node, f"invalid field name '{field}'; {expected}")
        return False
    if field == spec.CUSTOM_PREFIX:
        message = "invalid field name 'custom.'; expected a custom field's name or id after custom."
        report.add(node, message)
        return False
    if is_custom(field) or field in spec.OPPORTUNITY_FIELDS:
        return True
    report.add(node, unknown("field", field, spec.OPPORTUNITY_FIELDS, FIELD_HINT))
    return False


def check_writable(field: str, node: Node, report: Report) -> bool:
    """True for a known field a PUT can change; read-only fields are reported."""
    if not check_field(field, node, report):
        return False
    if is_custom(field) or spec.OPPORTUNITY_FIELDS[field].writable:
        return True
    instead = _INSTEAD.get(field, f"write one of {', '.join(spec.WRITABLE_FIELDS)}")
    report.add(node, f"{field} is read-only: Close computes it; {instead} instead")
    return False


def check_choices(field: str, values: Any, node: Node, report: Report) -> bool:
    """True when every text value fits a fixed-choice field (status_type, value_period)."""
    known = spec.OPPORTUNITY_FIELDS.get(field)
    if known is None or known.choices is None:
        return True
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, str) and value not in known.choices:
            report.add(node, _not_a_choice(field, value, known.choices))
            return False
    return True


def _not_a_choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    message = f"{field} is one of {', '.join(choices)}; found '{value}'"
    guess = closest(value, choices)
    return message if guess is None else f"{message}; did you mean '{guess}'?"
