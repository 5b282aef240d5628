"""The JSON Schema (draft 2020-12) of a rules file, rendered from the tables in spec.py.

Editors use it (through the `yaml-language-server` modeline) to autocomplete keys,
operators, actions and Close's opportunity fields; `dealkeeper schema` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.core.rules.spec import (
    ACTIONS,
    CONDITION_KEYWORDS,
    CUSTOM_FIELD_PATTERN,
    DURATION_PATTERN,
    FIND_FILTERS,
    OPERATORS,
    OPPORTUNITY_FIELDS,
    REPORT_CHECK_KEYS,
    RULE_KEYS,
    TOP_LEVEL_KEYS,
    TRIGGERS,
    WRITABLE_FIELDS,
    FieldSpec,
    FilterSpec,
    KeySpec,
    OperandKind,
)

_CUSTOM = {"type": "string", "pattern": CUSTOM_FIELD_PATTERN}


def json_schema() -> dict[str, Any]:
    """A draft 2020-12 JSON Schema of a rules file, rendered from spec.py's tables."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dealkeeper rules file",
        "type": "object",
        "additionalProperties": False,
        "anyOf": [{"required": ["rules"]}, {"required": ["report"]}],
        "properties": {
            "timezone": _described(TOP_LEVEL_KEYS["timezone"], {"type": "string"}),
            "rules": _described(
                TOP_LEVEL_KEYS["rules"], {"type": "array", "items": {"$ref": "#/$defs/rule"}}
            ),
            "report": _described(
                TOP_LEVEL_KEYS["report"], {"type": "array", "items": {"$ref": "#/$defs/check"}}
            ),
        },
        "$defs": _definitions(),
    }


def _definitions() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean", "null"]}
    return {
        "rule": _rule_schema(),
        "check": _check_schema(),
        "trigger": {"enum": list(TRIGGERS), "description": "An event name."},
        "triggers": {
            "oneOf": [
                {"$ref": "#/$defs/trigger"},
                {"type": "array", "items": {"$ref": "#/$defs/trigger"}, "minItems": 1},
            ]
        },
        "field": {"anyOf": [{"enum": list(OPPORTUNITY_FIELDS)}, _CUSTOM]},
        "writable_field": {"anyOf": [{"enum": list(WRITABLE_FIELDS)}, _CUSTOM]},
        "scalar": scalar,
        "test": {"anyOf": [{"$ref": "#/$defs/scalar"}, {"$ref": "#/$defs/operators"}]},
        "conditions": {
            "oneOf": [
                {"$ref": "#/$defs/condition"},
                {"type": "array", "items": {"$ref": "#/$defs/condition"}},
            ]
        },
        "condition": _condition_schema(),
        "operators": _operators_schema(),
        "action": _action_schema(),
        "find": _find_schema(),
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
        "schedule": {"type": "string", "minLength": 1},
        "find": {"$ref": "#/$defs/find"},
        "if": {"$ref": "#/$defs/conditions"},
        "then": {"type": "array", "items": {"$ref": "#/$defs/action"}, "minItems": 1},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": _required(RULE_KEYS),
        "not": {"required": ["trigger", "on"]},
        # A sweep rule has both schedule and find, and runs on them instead of triggers.
        "dependentRequired": {"schedule": ["find"], "find": ["schedule"]},
        "dependentSchemas": {
            "schedule": {"not": {"anyOf": [{"required": ["trigger"]}, {"required": ["on"]}]}}
        },
        "properties": {name: _described(RULE_KEYS[name], s) for name, s in value_schemas.items()},
    }


def _check_schema() -> dict[str, Any]:
    value_schemas: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "timezone": {"type": "string"},
        "find": {"$ref": "#/$defs/find"},
        "if": {"$ref": "#/$defs/conditions"},
    }
    return {
        "type": "object",
        "additionalProperties": False,  # no then: a check only counts
        "required": _required(REPORT_CHECK_KEYS),
        "properties": {
            name: _described(REPORT_CHECK_KEYS[name], s) for name, s in value_schemas.items()
        },
    }


def _find_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            f.name: {**_filter_schema(f), "description": f.description}
            for f in FIND_FILTERS.values()
        },
    }


def _filter_schema(spec: FilterSpec) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string", "minLength": 1}
    if spec.choices is not None:
        text = {"enum": list(spec.choices)}
    operands: dict[str, Any] = {
        "eq": text,
        "in": {"type": "array", "items": text, "minItems": 1},
        **{op: _operand_schema("ordered") for op in ("gt", "gte", "lt", "lte")},
        "older_than": _operand_schema("duration"),
        "newer_than": _operand_schema("duration"),
    }
    ranges = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {op: operands[op] for op in spec.operators},
    }
    if spec.kind == "date":
        return ranges
    return {"anyOf": [text, ranges]} if spec.operators else text


def _condition_schema() -> dict[str, Any]:
    conditions = {"type": "array", "items": {"$ref": "#/$defs/condition"}, "minItems": 1}
    return {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"anyOf": [{"$ref": "#/$defs/field"}, {"enum": ["any", "not"]}]},
        "properties": {
            "any": {**conditions, "description": CONDITION_KEYWORDS["any"]},
            "not": {
                "oneOf": [{"$ref": "#/$defs/condition"}, conditions],
                "description": CONDITION_KEYWORDS["not"],
            },
            **_fields_described(OPPORTUNITY_FIELDS, {"$ref": "#/$defs/test"}, test=True),
        },
        "additionalProperties": {"$ref": "#/$defs/test"},
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
    writable = {"$ref": "#/$defs/writable_field"}
    fields = {"type": "array", "items": writable, "minItems": 1}
    settable = {n: OPPORTUNITY_FIELDS[n] for n in WRITABLE_FIELDS}
    values: dict[str, Any] = {
        "set": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": writable,
            "properties": _fields_described(settable, one_or_more, test=False),
        },
        "unset": {"anyOf": [writable, fields]},
        "add": {"type": "object", "minProperties": 1, "propertyNames": _CUSTOM},
        "remove": {"type": "object", "minProperties": 1, "propertyNames": _CUSTOM},
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


def _fields_described(
    fields: Mapping[str, FieldSpec], schema: dict[str, Any], *, test: bool
) -> dict[str, Any]:
    """One property per field, with its sentence; a choice field lists its values."""
    described = {}
    for field in fields.values():
        own = schema
        if field.choices is not None:
            choices = {"enum": list(field.choices)}
            own = {"anyOf": [choices, {"$ref": "#/$defs/operators"}]} if test else choices
        described[field.name] = {**own, "description": field.description}
    return described


def _described(key: KeySpec, schema: dict[str, Any]) -> dict[str, Any]:
    described = {**schema, "description": key.description}
    if not key.required and key.default is not None:
        described["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return described


def _required(keys: Mapping[str, KeySpec]) -> list[str]:
    return [k.name for k in keys.values() if k.required]
