"""The rule language as data: keys, operators, actions and triggers, each with a sentence.

The loader checks rule files against these tables, and `schema.json_schema()` renders them
for editors and `dealkeeper schema`, so the two cannot drift apart.
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


@dataclass(frozen=True)
class FilterSpec:
    """One filter a sweep's `find` may use: a server-side filter of Close's list endpoint."""

    name: str  # as written in find
    param: str  # Close's query parameter
    kind: Literal["exact", "date", "text"]
    description: str
    operators: tuple[str, ...] = ()  # beside a bare value; exact: eq, in; date: gt ... newer_than
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FieldSpec:
    """One field of Close's opportunity, as rules may read (and perhaps write) it."""

    name: str
    type: str  # text, id, number, date, datetime, choice, list, boolean
    description: str
    writable: bool = False
    choices: tuple[str, ...] | None = None  # the only values Close holds in this field


STATUS_TYPES = ("active", "won", "lost")
VALUE_PERIODS = ("one_time", "monthly", "annual")
CUSTOM_PREFIX = "custom."

# Close's opportunity as GET /opportunity/{id}/ returns it (close-api-notes.md section 8).
# Rules name any of these; anything else that is not custom.NAME is a mistake.
OPPORTUNITY_FIELDS: Mapping[str, FieldSpec] = {
    f.name: f
    for f in (
        FieldSpec("id", "id", "The opportunity's id, oppo_..."),
        FieldSpec("organization_id", "id", "The organization's id, orga_..."),
        FieldSpec("lead_id", "id", "The lead the opportunity belongs to.", writable=True),
        FieldSpec("lead_name", "text", "The lead's name."),
        FieldSpec("contact_id", "id", "The contact of the lead it is with.", writable=True),
        FieldSpec("contact_name", "text", "The contact's name."),
        FieldSpec("user_id", "id", "The owner's user id.", writable=True),
        FieldSpec("user_name", "text", "The owner's name."),
        FieldSpec(
            "status",
            "text",
            "The status label; set resolves it to the status of that label in the pipeline.",
            writable=True,
        ),
        FieldSpec("status_id", "id", "The status id, stat_...", writable=True),
        FieldSpec("status_label", "text", "The status label, e.g. Won."),
        FieldSpec("status_type", "choice", "The kind of status.", choices=STATUS_TYPES),
        FieldSpec("status_display_name", "text", "The status as Close's UI shows it."),
        FieldSpec("pipeline_id", "id", "The pipeline id, pipe_...", writable=True),
        FieldSpec("pipeline_name", "text", "The pipeline's name."),
        FieldSpec("value", "number", "The value in cents: 1000000 is $10,000.", writable=True),
        FieldSpec("value_period", "choice", "How often the value recurs.", True, VALUE_PERIODS),
        FieldSpec("value_currency", "text", "The organization's currency, e.g. USD."),
        FieldSpec("value_formatted", "text", 'The value as text, e.g. "$500 annual".'),
        FieldSpec("confidence", "number", "The chance to win, 0-100.", writable=True),
        FieldSpec("expected_value", "number", "value x confidence, in cents."),
        FieldSpec("annualized_value", "number", "The value over a year, in cents."),
        FieldSpec("annualized_expected_value", "number", "annualized_value x confidence."),
        FieldSpec("date_won", "date", "The day it was won, YYYY-MM-DD.", writable=True),
        FieldSpec("date_lost", "datetime", "When it was lost.", writable=True),
        FieldSpec("date_created", "datetime", "When it was created."),
        FieldSpec("date_updated", "datetime", "When it last changed."),
        FieldSpec("created_by", "id", "Who created it (user id)."),
        FieldSpec("created_by_name", "text", "Who created it."),
        FieldSpec("updated_by", "id", "Who changed it last (user id)."),
        FieldSpec("updated_by_name", "text", "Who changed it last."),
        FieldSpec("note", "text", "The opportunity's note, plain text.", writable=True),
        FieldSpec("note_html", "text", "The note as rich text."),
        FieldSpec("attachments", "list", "Files attached to it."),
        FieldSpec("integration_links", "list", "Links added by integrations."),
        FieldSpec("is_stalled", "boolean", "True when Close considers the deal stalled."),
        FieldSpec("stall_status", "text", "Why Close considers the deal stalled."),
        FieldSpec(
            "date_status_changed",
            "datetime",
            "Sweeps only: when the deal moved to its status (Close's status-change activity).",
        ),
    )
}
# Fields dealkeeper works out itself, for sweeps: no event carries them.
SWEEP_ONLY_FIELDS = ("date_status_changed",)
WRITABLE_FIELDS = tuple(f.name for f in OPPORTUNITY_FIELDS.values() if f.writable)

TRIGGERS: Mapping[str, str] = {
    "opportunity.created": "An opportunity was created.",
    "opportunity.updated": "An opportunity was changed.",
    "opportunity.deleted": "An opportunity was deleted; its update is never sent.",
}
# What people write for Close's actions; spelling alone would turn "changed" into "created".
TRIGGER_SYNONYMS: Mapping[str, str] = {
    "changed": "opportunity.updated",
    "modified": "opportunity.updated",
    "edited": "opportunity.updated",
    "update": "opportunity.updated",
    "new": "opportunity.created",
    "added": "opportunity.created",
    "create": "opportunity.created",
    "removed": "opportunity.deleted",
    "delete": "opportunity.deleted",
}
DEFAULT_TRIGGERS = ("opportunity.created", "opportunity.updated")
DEFAULT_TIMEZONE = "UTC"

TOP_LEVEL_KEYS: Mapping[str, KeySpec] = {
    k.name: k
    for k in (
        KeySpec("timezone", "IANA time zone for every date in this file.", DEFAULT_TIMEZONE),
        KeySpec("rules", "The rules of this file, evaluated in order (or a report: section)."),
        KeySpec(
            "report",
            "Checks `dealkeeper report` counts failing open deals for: name, find and if, no then.",
        ),
    )
}

REPORT_CHECK_KEYS: Mapping[str, KeySpec] = {
    k.name: k
    for k in (
        KeySpec("name", "Unique name of the check across all rules and checks.", required=True),
        KeySpec("description", "What the check is for, in a sentence.", ""),
        KeySpec("timezone", "IANA time zone of this check's dates; overrides the file's.", None),
        KeySpec(
            "find",
            "The filters Close applies to list the deals checked, as a sweep rule's find, e.g."
            " {status_type: active}.",
            required=True,
        ),
        KeySpec("if", "Conditions a deal fails the check on; absent means every deal listed."),
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
        KeySpec(
            "schedule",
            "Makes a sweep rule: when it runs, as cron (minute hour day month weekday) in the "
            "rule's timezone, e.g. '0 6 * * 1-5'.",
            None,
        ),
        KeySpec(
            "find",
            "A sweep rule's filters, applied by Close: which opportunities it lists, e.g. "
            "{status_type: active, date_updated: {older_than: 60d}}; {} lists every one.",
            None,
        ),
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
        OperatorSpec(
            "matches", "regex", "The regular expression (RE2 syntax) is found in the field's text."
        ),
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

# Operators that read a change: a sweep sees each deal as it is, so they never hold there.
CHANGE_OPERATORS = ("changed", "changed_from", "changed_to")

_EXACT = ("eq", "in")
_DATE = ("gt", "gte", "lt", "lte", "older_than", "newer_than")
FIND_FILTERS: Mapping[str, FilterSpec] = {
    f.name: f
    for f in (
        FilterSpec(
            "status_type", "status_type", "exact", "active, won or lost.", _EXACT, STATUS_TYPES
        ),
        FilterSpec("status", "status_label", "exact", "The status label, e.g. Won.", _EXACT),
        FilterSpec("status_label", "status_label", "exact", "The status label.", _EXACT),
        FilterSpec("status_id", "status_id", "exact", "The status id, stat_...", _EXACT),
        FilterSpec("user_id", "user_id", "exact", "The owner's user id, user_...", _EXACT),
        FilterSpec("lead_id", "lead_id", "exact", "The lead's id, lead_...", ("eq",)),
        FilterSpec(
            "value_period", "value_period", "exact", "How often the value recurs.", _EXACT,
            VALUE_PERIODS,
        ),
        FilterSpec("date_created", "date_created", "date", "When it was created.", _DATE),
        FilterSpec("date_updated", "date_updated", "date", "When it last changed.", _DATE),
        FilterSpec("date_won", "date_won", "date", "The day it was won.", _DATE),
        FilterSpec("query", "query", "text", "Close's search query, e.g. 'note:important'."),
        FilterSpec(
            "lead_saved_search_id", "lead_saved_search_id", "text",
            "Only deals of the leads in this Smart View (save_...).",
        ),
    )
}  # fmt: skip

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

CUSTOM_FIELD_PATTERN = r"^custom\..+$"
