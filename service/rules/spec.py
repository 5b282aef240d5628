"""The rule language as data: keys, operators, actions and triggers, each with a sentence.

The loader checks rule files against these tables, and `json_schema()` renders them for
editors and `dealkeeper schema`, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

OperandKind = Literal[
    "value", "values", "one_or_more", "ordered", "member", "regex", "boolean", "duration"
]


@dataclass(frozen=True)
class KeySpec:
    """One key of a mapping in a rules file."""

    name: str
    description: str
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class OperatorSpec:
    """One operator of a field test: `field: {operator: operand}`."""

    name: str
    operand: OperandKind
    description: str


@dataclass(frozen=True)
class ActionSpec:
    """One action kind of `then`."""

    name: str
    description: str
    custom_only: bool = False  # add/remove only make sense on multi-value custom fields


TRIGGERS: Mapping[str, str] = {
    "opportunity.created": "An opportunity was created.",
    "opportunity.updated": "An opportunity was changed.",
    "opportunity.deleted": "An opportunity was deleted; its update is never sent.",
}
DEFAULT_TRIGGERS = ("opportunity.created", "opportunity.updated")
DEFAULT_TIMEZONE = "UTC"

TOP_LEVEL_KEYS: Mapping[str, KeySpec] = {
    k.name: k
    for k in (
        KeySpec("timezone", "IANA time zone for every date in this file.", DEFAULT_TIMEZONE),
        KeySpec("rules", "The rules of this file, evaluated in order.", required=True),
    )
}

RULE_KEYS: Mapping[str, KeySpec] = {
    k.name: k
    for k in (
        KeySpec("name", "Unique name of the rule across all rule files.", required=True),
        KeySpec("description", "What the rule is for, in a sentence.", ""),
        KeySpec(
            "trigger", "Event name or list of event names the rule runs for.", DEFAULT_TRIGGERS
        ),
        KeySpec("on", "Another spelling of trigger; use one of the two.", DEFAULT_TRIGGERS),
        KeySpec("timezone", "IANA time zone of this rule's dates; overrides the file's.", None),
        KeySpec("enabled", "false turns the rule off.", True),
        KeySpec("dry_run", "true logs the rule's update instead of sending it.", False),
        KeySpec("if", "Conditions that must all hold; absent means always.", None),
        KeySpec(
            "then", "Actions, merged with those of every other rule that fired.", required=True
        ),
    )
}

OPERATORS: Mapping[str, OperatorSpec] = {
    o.name: o
    for o in (
        OperatorSpec("eq", "value", "The field equals the operand (numbers and dates by value)."),
        OperatorSpec("ne", "value", "The field does not equal the operand."),
        OperatorSpec("in", "values", "The field equals one of the listed values."),
        OperatorSpec("not_in", "values", "The field equals none of the listed values."),
        OperatorSpec("gt", "ordered", "The field is greater (later) than the operand."),
        OperatorSpec(
            "gte", "ordered", "The field is greater (later) than or equal to the operand."
        ),
        OperatorSpec("lt", "ordered", "The field is less (earlier) than the operand."),
        OperatorSpec("lte", "ordered", "The field is less (earlier) than or equal to the operand."),
        OperatorSpec("contains", "member", "The list holds the operand, or the text includes it."),
        OperatorSpec("not_contains", "member", "The field (possibly empty) lacks the operand."),
        OperatorSpec("matches", "regex", "The regular expression is found in the field's text."),
        OperatorSpec("empty", "boolean", "true: the field is null, empty or absent."),
        OperatorSpec("changed", "boolean", "true: this event changed the field."),
        OperatorSpec("changed_from", "one_or_more", "The field changed, from this value."),
        OperatorSpec("changed_to", "one_or_more", "The field changed, to this value."),
        OperatorSpec(
            "older_than", "duration", "The field's date is at least this long before the event."
        ),
        OperatorSpec(
            "newer_than", "duration", "The field's date is less than this long before the event."
        ),
    )
}

CONDITION_KEYWORDS: Mapping[str, str] = {
    "any": "A list of conditions of which at least one must hold.",
    "not": "A condition (or a list, all of which) that must not hold.",
}

ACTIONS: Mapping[str, ActionSpec] = {
    a.name: a
    for a in (
        ActionSpec("set", "Set fields: {field: value}; null unsets, today/today+7d/now are dates."),
        ActionSpec("unset", "Clear fields: a list of field names."),
        ActionSpec("add", "Add a value to a multi-value custom field.", custom_only=True),
        ActionSpec("remove", "Remove a value from a multi-value custom field.", custom_only=True),
    )
}

OPERAND_DESCRIPTIONS: Mapping[OperandKind, str] = {
    "value": "a value (text, number, true/false, null or a date expression)",
    "values": "a list of values",
    "one_or_more": "a value or a list of values",
    "ordered": "a number, a date (2026-01-31), a datetime or a date expression (today-30d)",
    "member": "a value (text, number or true/false)",
    "regex": "a regular expression",
    "boolean": "true or false",
    "duration": "a duration such as 90d, 12h, 30m or 2w",
}

DURATION_PATTERN = r"^[0-9]+[mhdw]$"
FIELD_PATTERN = r"^(?!custom\.$).+$"
CUSTOM_FIELD_PATTERN = r"^custom\..+$"


def json_schema() -> dict[str, Any]:
    """A draft 2020-12 JSON Schema of a rules file, rendered from the tables above."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dealkeeper rules file",
        "type": "object",
        "additionalProperties": False,
        "required": _required(TOP_LEVEL_KEYS),
        "properties": {
            "timezone": _described(TOP_LEVEL_KEYS["timezone"], {"type": "string"}),
            "rules": _described(
                TOP_LEVEL_KEYS["rules"], {"type": "array", "items": {"$ref": "#/$defs/rule"}}
            ),
        },
        "$defs": _definitions(),
    }


def _definitions() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean", "null"]}
    return {
        "rule": _rule_schema(),
        "trigger": {"enum": list(TRIGGERS), "description": "An event name."},
        "triggers": {
            "oneOf": [
                {"$ref": "#/$defs/trigger"},
                {"type": "array", "items": {"$ref": "#/$defs/trigger"}, "minItems": 1},
            ]
        },
        "field": {"type": "string", "pattern": FIELD_PATTERN},
        "scalar": scalar,
        "conditions": {
            "oneOf": [
                {"$ref": "#/$defs/condition"},
                {"type": "array", "items": {"$ref": "#/$defs/condition"}},
            ]
        },
        "condition": _condition_schema(),
        "operators": _operators_schema(),
        "action": _action_schema(),
    }


def _rule_schema() -> dict[str, Any]:
    value_schemas: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "trigger": {"$ref": "#/$defs/triggers"},
        "on": {"$ref": "#/$defs/triggers"},
        "timezone": {"type": "string"},
        "enabled": {"type": "boolean"},
        "dry_run": {"type": "boolean"},
        "if": {"$ref": "#/$defs/conditions"},
        "then": {"type": "array", "items": {"$ref": "#/$defs/action"}, "minItems": 1},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": _required(RULE_KEYS),
        "not": {"required": ["trigger", "on"]},
        "properties": {name: _described(RULE_KEYS[name], s) for name, s in value_schemas.items()},
    }


def _condition_schema() -> dict[str, Any]:
    conditions = {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}
    return {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"$ref": "#/$defs/field"},
        "properties": {
            "any": {**conditions, "description": CONDITION_KEYWORDS["any"]},
            "not": {
                "oneOf": [{"$ref": "#/$defs/condition"}, conditions],
                "description": CONDITION_KEYWORDS["not"],
            },
        },
        "additionalProperties": {
            "anyOf": [{"$ref": "#/$defs/scalar"}, {"$ref": "#/$defs/operators"}]
        },
    }


def _operators_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            o.name: {**_operand_schema(o.operand), "description": o.description}
            for o in OPERATORS.values()
        },
    }


def _operand_schema(kind: OperandKind) -> dict[str, Any]:
    scalar = {"$ref": "#/$defs/scalar"}
    schemas: dict[OperandKind, dict[str, Any]] = {
        "value": scalar,
        "values": {"type": "array", "items": scalar},
        "one_or_more": {"anyOf": [scalar, {"type": "array", "items": scalar}]},
        "ordered": {"type": ["number", "string"]},
        "member": {"type": ["string", "number", "boolean"]},
        "regex": {"type": "string", "format": "regex"},
        "boolean": {"type": "boolean"},
        "duration": {"type": "string", "pattern": DURATION_PATTERN},
    }
    return schemas[kind]


def _action_schema() -> dict[str, Any]:
    scalar = {"$ref": "#/$defs/scalar"}
    one_or_more = {"anyOf": [scalar, {"type": "array", "items": scalar}]}
    custom = {"type": "string", "pattern": CUSTOM_FIELD_PATTERN}
    fields = {"type": "array", "items": {"$ref": "#/$defs/field"}, "minItems": 1}
    values: dict[str, Any] = {
        "set": {"type": "object", "minProperties": 1, "propertyNames": {"$ref": "#/$defs/field"}},
        "unset": {"anyOf": [{"$ref": "#/$defs/field"}, fields]},
        "add": {"type": "object", "minProperties": 1, "propertyNames": custom},
        "remove": {"type": "object", "minProperties": 1, "propertyNames": custom},
    }
    member = {"type": ["string", "number", "boolean"]}
    values["set"]["additionalProperties"] = one_or_more
    for kind in ("add", "remove"):
        values[kind]["additionalProperties"] = {
            "anyOf": [member, {"type": "array", "items": member, "minItems": 1}]
        }
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            name: {**values[name], "description": ACTIONS[name].description} for name in ACTIONS
        },
    }


def _described(key: KeySpec, schema: dict[str, Any]) -> dict[str, Any]:
    described = {**schema, "description": key.description}
    if not key.required and key.default is not None:
        described["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return described


def _required(keys: Mapping[str, KeySpec]) -> list[str]:
    return [k.name for k in keys.values() if k.required]
