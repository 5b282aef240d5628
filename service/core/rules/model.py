"""The rule language as data, Close's metadata as data, and the plan the engine returns.

Everything here is a frozen dataclass: the loader builds rules, the metadata adapter builds
Metadata, the engine builds a Plan. No I/O, no clock, no globals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from service.core.rules.cron import CronSchedule

ActionKind = Literal["set", "unset", "add", "remove"]


@dataclass(frozen=True)
class Position:
    """Where something was written: file name, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class DateExpr:
    """`today`, `today+7d`, `today-1d`: a calendar date relative to the event's own day."""

    offset_days: int
    text: str


@dataclass(frozen=True)
class NowExpr:
    """`now` in a `set` action: the moment of the event, written in UTC."""

    text: str = "now"


@dataclass(frozen=True)
class DateOfExpr:
    """`date_of(date_status_changed, date_updated)` in a `set`: the calendar date, in the
    rule's zone, of the first of these fields that holds a date or a datetime."""

    fields: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class TemplateExpr:
    """A `{{ ... }}` value: text rendered per event in a sandbox (see templates.py)."""

    text: str
    compiled: Any = field(default=None, compare=False, repr=False, hash=False)


@dataclass(frozen=True)
class Condition:
    """One `field: {operator: operand}` test (a bare `field: value` is `eq`)."""

    field: str  # as written: "value", "status", "custom.Segment", "custom.cf_abc"
    operator: str  # one of spec.OPERATORS
    operand: Any  # validated; durations in seconds, DateExpr for date operands
    position: Position


@dataclass(frozen=True)
class AllOf:
    """Every condition must hold (a rule's `if` list, or a mapping with several keys)."""

    conditions: tuple[ConditionNode, ...]
    position: Position


@dataclass(frozen=True)
class AnyOf:
    """At least one condition must hold (`any: [...]`)."""

    conditions: tuple[ConditionNode, ...]
    position: Position


@dataclass(frozen=True)
class Not:
    """The condition must not hold (`not: {...}`)."""

    condition: ConditionNode
    position: Position


ConditionNode = Condition | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Action:
    """One entry of `then`: set, unset, add or remove one field."""

    kind: ActionKind
    field: str  # as written
    value: Any  # literal, DateExpr, NowExpr, TemplateExpr, or None for unset
    position: Position


@dataclass(frozen=True)
class FindFilter:
    """One filter of a sweep's `find`, applied by Close's list endpoint."""

    name: str  # as written: status_type, status, date_updated, query, ...
    operator: str  # eq, in, gt, gte, lt, lte, older_than, newer_than
    operand: Any  # text, list of text, seconds, date, datetime or DateExpr
    position: Position


@dataclass(frozen=True)
class Sweep:
    """What makes a rule a sweep rule: when it runs and which opportunities it lists."""

    schedule: CronSchedule
    filters: tuple[FindFilter, ...]
    position: Position  # where `schedule` was written


@dataclass(frozen=True)
class Rule:
    """One named rule."""

    name: str
    triggers: tuple[str, ...]  # e.g. ("opportunity.created", "opportunity.updated")
    condition: AllOf
    actions: tuple[Action, ...]
    timezone: str  # IANA name, from the rule or its file
    position: Position
    description: str = ""
    enabled: bool = True
    dry_run: bool = False
    sweep: Sweep | None = None  # None: a rule that runs on Close's events

    @property
    def is_sweep(self) -> bool:
        """True for a rule that runs on a schedule over listed opportunities."""
        return self.sweep is not None


@dataclass(frozen=True)
class ReportCheck:
    """One check of a `report:` section: the deals its find lists and its `if` holds for
    fail it. It only counts: it has no `then`, and nothing ever writes for it."""

    name: str
    filters: tuple[FindFilter, ...]  # find: Close's list endpoint applies them
    rule: Rule  # find's tests and `if` as a rule with no actions, judged as a sweep judges
    description: str = ""

    @property
    def position(self) -> Position:
        """Where the check was written."""
        return self.rule.position


@dataclass(frozen=True)
class RuleSet:
    """Every rule in force, in evaluation order (files by name, rules in file order)."""

    rules: tuple[Rule, ...] = ()
    files: tuple[str, ...] = ()
    digest: str = ""  # short sha256 of the sources: tells which rules are in force
    checks: tuple[ReportCheck, ...] = ()  # the report: sections' checks, in file order
    # make_plan's compiled form of the rules (program.py), made once: a cache, not part of
    # the rule set's value, so left out of equality, hashing and repr.
    compiled: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    def rule(self, name: str) -> Rule | None:
        """The rule with this name, if there is one."""
        return next((rule for rule in self.rules if rule.name == name), None)

    @property
    def sweep_rules(self) -> tuple[Rule, ...]:
        """The rules that sweep on a schedule, in evaluation order."""
        return tuple(rule for rule in self.rules if rule.is_sweep)


@dataclass(frozen=True)
class Status:
    """An opportunity status of Close (`GET /status/opportunity/`)."""

    id: str
    label: str
    type: str  # active | won | lost
    pipeline_id: str | None = None


@dataclass(frozen=True)
class CustomField:
    """An opportunity custom field (`GET /custom_field_schema/opportunity/`)."""

    id: str  # cf_...
    name: str
    type: str
    accepts_multiple_values: bool = False
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Metadata:
    """What the engine needs to know about the Close organization."""

    statuses: tuple[Status, ...] = ()
    custom_fields: tuple[CustomField, ...] = ()

    def custom_field(self, ref: str) -> CustomField | None:
        """The field named `ref`, or with id `ref` (`cf_...`)."""
        return self._custom_fields_by_ref.get(ref)

    @cached_property
    def _custom_fields_by_ref(self) -> dict[str, CustomField]:
        # Built once per Metadata, as the engine looks fields up for every event. The first
        # field with that id or name wins, as a scan in order finds it.
        found: dict[str, CustomField] = {}
        for candidate in self.custom_fields:
            found.setdefault(candidate.id, candidate)
            found.setdefault(candidate.name, candidate)
        return found

    def status_for_label(self, label: str, pipeline_id: str | None) -> Status | None:
        """The status with this label, in the given pipeline when there is one."""
        matches = [s for s in self.statuses if s.label == label]
        in_pipeline = [s for s in matches if pipeline_id is None or s.pipeline_id == pipeline_id]
        return in_pipeline[0] if in_pipeline else None


# Conflict and Dropped write their own __init__ (init=False): a plan can carry one of each
# per rule that fired, and storing into the instance's dict takes half the time of the
# generated frozen __init__, which calls object.__setattr__ once per field. They are frozen
# dataclasses all the same: equality, hashing, repr, replace(), and no attribute assignment.


@dataclass(frozen=True, init=False)
class Conflict:
    """Two fired rules wrote one field with different values; the later rule won."""

    field: str
    earlier_rule: str
    earlier_value: Any
    later_rule: str
    later_value: Any

    def __init__(
        self, field: str, earlier_rule: str, earlier_value: Any, later_rule: str, later_value: Any
    ) -> None:
        values = self.__dict__
        values["field"] = field
        values["earlier_rule"] = earlier_rule
        values["earlier_value"] = earlier_value
        values["later_rule"] = later_rule
        values["later_value"] = later_value


@dataclass(frozen=True, init=False)
class Dropped:
    """A part of the merged update that is not sent, and why."""

    field: str
    rule: str
    reason: str  # "already holds", "dry run", "opportunity deleted", ...

    def __init__(self, field: str, rule: str, reason: str) -> None:
        values = self.__dict__
        values["field"] = field
        values["rule"] = rule
        values["reason"] = reason


@dataclass(frozen=True)
class Truncated:
    """A text longer than rules read (texts.MAX_TEXT_CHARS): conditions and templates saw
    only its first characters."""

    field: str  # Close's key: "note", "custom.cf_abc" ("custom.NAME" in the nested form)
    length: int  # the characters it holds (of its longest text, for a list)
    previous: bool = False  # True: the value before the change (the event's previous_data)


@dataclass(frozen=True)
class Plan:
    """What the engine decided for one event."""

    event_id: str
    opportunity_id: str
    fired: tuple[str, ...] = ()
    update: Mapping[str, Any] = field(default_factory=dict)  # the PUT body for Close
    tz_offset_hours: float | None = None  # x-tz-offset for the write
    conflicts: tuple[Conflict, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    dry_run_update: Mapping[str, Any] = field(default_factory=dict)
    reasons_not_fired: Mapping[str, str] = field(default_factory=dict)
    unresolved: tuple[str, ...] = ()  # custom field names or status labels unknown to metadata
    ignored: str | None = None  # why the whole event was ignored, e.g. our own change
    truncated: tuple[Truncated, ...] = ()  # texts the rules read only the start of

    @property
    def has_update(self) -> bool:
        """True when the plan needs one API call."""
        return bool(self.update)
