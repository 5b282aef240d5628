"""How the fake applies a POST or PUT body to an opportunity, as Close does.

Close's rules (close-api-notes.md sections 8, 10, 11): a PUT is a patch; `status_id` also
sets the label, type and pipeline; a move to a won status fills `date_won` with "today" in
the x-tz-offset zone unless date_won is already set or sent; `custom.cf_X` sets, `null`
unsets, `.add`/`.remove` edit one value of a multi-value field. Read-only and unknown keys
are ignored, as Close's validation library does; every bad value is reported at once.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

STATUS_KEYS = ("status_id", "status", "pipeline_id")
VALUE_PERIODS = ("one_time", "monthly", "annual")
MULTI_VALUE_TYPES = ("user", "choices", "contact", "custom_object")
_CUSTOM_OPERATIONS = ("add", "remove")


class PatchError(ValueError):
    """Close would answer 400 with these `field-errors`."""

    def __init__(self, field_errors: Mapping[str, str]) -> None:
        self.field_errors = dict(field_errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in sorted(self.field_errors.items())))


@dataclass(frozen=True)
class Catalog:
    """What a patch needs to know about the organization."""

    statuses: Mapping[str, Mapping[str, Any]]  # id -> {id, label, type, pipeline_id, ...}
    pipelines: Mapping[str, Mapping[str, Any]]  # id -> {id, name, status_ids}
    custom_fields: Mapping[str, Mapping[str, Any]]  # id -> field definition
    user_names: Mapping[str, str]  # id -> full name

    def custom_field(self, ref: str) -> Mapping[str, Any] | None:
        """The field with id `ref`, else the one named `ref` (the deprecated form)."""
        if ref in self.custom_fields:
            return self.custom_fields[ref]
        return next((f for f in self.custom_fields.values() if f["name"] == ref), None)

    def status_by_label(self, label: object, pipeline_id: str | None) -> Mapping[str, Any] | None:
        """The status with this label, in `pipeline_id` when given."""
        return next(
            (
                s
                for s in self.statuses.values()
                if s["label"] == label and pipeline_id in (None, s["pipeline_id"])
            ),
            None,
        )


def is_writable(key: str) -> bool:
    """True for the keys a POST or PUT body can change."""
    return key in STATUS_KEYS or key in _SCALAR_CHECKS or key.startswith("custom.")


def without_keys(body: Mapping[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """`body` without the keys that write one of `fields` (`custom.cf_X.add` writes
    `custom.cf_X`): what a Close that ignores those fields acts on."""
    return {k: v for k, v in body.items() if k not in fields and _field_of(k) not in fields}


def _field_of(key: str) -> str:
    if not key.startswith("custom."):
        return key
    ref, operation = _split_custom_key(key)
    return f"custom.{ref}" if operation != "set" else key


def apply_patch(
    current: Mapping[str, Any], body: Mapping[str, Any], *, catalog: Catalog, today: date
) -> dict[str, Any]:
    """The opportunity after `body`; PatchError lists every bad field."""
    result = copy.deepcopy(dict(current))
    errors: dict[str, str] = {}
    status = _requested_status(result, body, catalog, errors)
    for key, value in body.items():
        if key.startswith("custom."):
            _apply_custom(result, key, value, catalog, errors)
        elif key in _SCALAR_CHECKS:
            _apply_scalar(result, key, value, catalog, errors)
    if errors:
        raise PatchError(errors)
    if status is not None:
        _set_status(result, status, catalog)
        if status["type"] == "won" and "date_won" not in body and result.get("date_won") is None:
            result["date_won"] = today.isoformat()
    return derive(result)


def derive(opportunity: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields Close computes from others (money in cents, display names)."""
    value, confidence = opportunity.get("value"), opportunity.get("confidence") or 0
    period = opportunity.get("value_period")
    annual = None if value is None else value * 12 if period == "monthly" else value
    opportunity["expected_value"] = None if value is None else round(value * confidence / 100)
    opportunity["annualized_value"] = annual
    opportunity["annualized_expected_value"] = (
        None if annual is None else round(annual * confidence / 100)
    )
    opportunity["value_formatted"] = _money(value, period)
    opportunity["status_display_name"] = opportunity.get("status_label")
    return opportunity


def _money(cents: int | None, period: object) -> str | None:
    if cents is None:
        return None
    amount = dollars(cents)
    return amount if period == "one_time" else f"{amount} {period}"


def dollars(cents: int) -> str:
    """Cents as Close shows money: `$1,000`, `$2.50`."""
    return f"${cents / 100:,.2f}".removesuffix(".00")


def _requested_status(
    result: Mapping[str, Any], body: Mapping[str, Any], catalog: Catalog, errors: dict[str, str]
) -> Mapping[str, Any] | None:
    pipeline_id = body.get("pipeline_id")
    if "pipeline_id" in body and pipeline_id not in catalog.pipelines:
        errors["pipeline_id"] = "Invalid pipeline."
        return None
    if "status_id" in body:
        status = catalog.statuses.get(str(body["status_id"]))
        if status is None:
            errors["status_id"] = "Invalid opportunity status."
            return None
        if pipeline_id is not None and status["pipeline_id"] != pipeline_id:
            errors["status_id"] = "The status does not belong to the given pipeline."
            return None
        return status
    if "status" in body:  # deprecated: a label, resolved in the opportunity's pipeline
        status = catalog.status_by_label(body["status"], pipeline_id or result.get("pipeline_id"))
        if status is None:
            errors["status"] = "Invalid opportunity status."
        return status
    if pipeline_id is not None and pipeline_id != result.get("pipeline_id"):
        first = catalog.pipelines[pipeline_id]["status_ids"][0]
        return catalog.statuses[first]
    return None


def _set_status(result: dict[str, Any], status: Mapping[str, Any], catalog: Catalog) -> None:
    pipeline = catalog.pipelines[status["pipeline_id"]]
    result.update(
        status_id=status["id"],
        status_label=status["label"],
        status_type=status["type"],
        pipeline_id=pipeline["id"],
        pipeline_name=pipeline["name"],
    )


def _apply_scalar(
    result: dict[str, Any], key: str, value: Any, catalog: Catalog, errors: dict[str, str]
) -> None:
    problem = _SCALAR_CHECKS[key](value, catalog)
    if problem:
        errors[key] = problem
        return
    result[key] = value
    if key == "user_id":
        result["user_name"] = catalog.user_names[value]


def _apply_custom(
    result: dict[str, Any], key: str, value: Any, catalog: Catalog, errors: dict[str, str]
) -> None:
    ref, operation = _split_custom_key(key)
    field = catalog.custom_field(ref)
    if field is None:
        errors[key] = "Unknown custom field."
        return
    problem = _edit_custom(result, f"custom.{field['id']}", field, operation, value)
    if problem:
        errors[key] = problem


def _split_custom_key(key: str) -> tuple[str, str]:
    ref = key.removeprefix("custom.")
    for operation in _CUSTOM_OPERATIONS:
        if ref.endswith("." + operation):
            return ref.removesuffix("." + operation), operation
    return ref, "set"


def _edit_custom(
    result: dict[str, Any], slot: str, field: Mapping[str, Any], operation: str, value: Any
) -> str | None:
    multi = bool(field["accepts_multiple_values"])
    if operation != "set" and not multi:
        return f"'.{operation}' works only on fields that accept multiple values."
    if operation == "set" and value is None:
        result.pop(slot, None)
        return None
    if not multi:
        problem = _custom_value_problem(field, value)
        if problem is None:
            result[slot] = value
        return problem
    values = value if isinstance(value, list) and operation == "set" else [value]
    checked = values if operation != "remove" else []
    problem = next(filter(None, (_custom_value_problem(field, v) for v in checked)), None)
    if problem is None:
        _store_multi(result, slot, operation, values)
    return problem


def _store_multi(result: dict[str, Any], slot: str, operation: str, values: list[Any]) -> None:
    current = list(result.get(slot) or [])
    if operation == "set":
        current = list(values)
    elif operation == "add":
        current += [v for v in values if v not in current]
    else:
        current = [v for v in current if v not in values]
    if current:
        result[slot] = current
    else:
        result.pop(slot, None)  # an emptied list reads back as unset


def _custom_value_problem(field: Mapping[str, Any], value: Any) -> str | None:
    if value is None or isinstance(value, list | dict):
        return "Expected a single value."
    if field["type"] == "choices" and value not in (field.get("choices") or ()):
        return f"{value!r} is not one of the field's choices."
    check = _CUSTOM_TYPE_CHECKS.get(field["type"])
    return check(value) if check else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_date_text(value: object) -> bool:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _need(ok: bool, message: str) -> str | None:
    return None if ok else message


_SCALAR_CHECKS: Mapping[str, Callable[[Any, Catalog], str | None]] = {
    "confidence": lambda v, _: _need(_is_int(v) and 0 <= v <= 100, "Must be an integer 0-100."),
    "value": lambda v, _: _need(v is None or _is_int(v), "Must be an integer (cents) or null."),
    "value_period": lambda v, _: _need(v in VALUE_PERIODS, f"Must be one of {VALUE_PERIODS}."),
    "date_won": lambda v, _: _need(v is None or _is_date_text(v), "Must be YYYY-MM-DD or null."),
    "note": lambda v, _: _need(isinstance(v, str), "Must be a string."),
    "user_id": lambda v, c: _need(v in c.user_names, "Invalid user."),
    "contact_id": lambda v, _: _need(v is None or isinstance(v, str), "Invalid contact."),
}

_CUSTOM_TYPE_CHECKS: Mapping[str, Callable[[Any], str | None]] = {
    "number": lambda v: _need(
        isinstance(v, int | float) and not isinstance(v, bool), "Not a number."
    ),
    "date": lambda v: _need(_is_date_text(v), "Must be a date, YYYY-MM-DD."),
    "datetime": lambda v: _need(_is_datetime_text(v), "Must be an ISO 8601 date and time."),
    "user": lambda v: _need(isinstance(v, str), "Must be a user id."),
    "contact": lambda v: _need(isinstance(v, str), "Must be a contact id."),
    "custom_object": lambda v: _need(isinstance(v, str), "Must be a custom object id."),
}
