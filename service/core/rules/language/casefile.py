"""Parsing rule test files (`*.test.yaml`) into cases, with positioned problems.

The format is checked as strictly as rule files: unknown keys, missing keys and malformed
events are reported as `file:line:column: message`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from service.core.events import (
    SWEPT,
    EnvelopeError,
    Event,
    event_from_dict,
    event_from_envelope,
    require_payload,
)
from service.core.rules.language.yamlnodes import Report, describe, keyed, position, to_python
from service.core.rules.model import CustomField, Metadata, Position, Status

EventReader = Callable[[str], str]  # path relative to the test file -> the file's text

FILE_KEYS = ["metadata", "tests"]
CASE_KEYS = ["name", "event", "event_file", "expect", "metadata"]
EVENT_KEYS = [
    "id", "object_type", "action", "object_id", "date_created", "date_updated",
    "changed_fields", "previous_data", "data", "api_key_id", "user_id", "lead_id", "request_id",
    "sweep",
]  # fmt: skip
EXPECT_KEYS = ["fired", "not_fired", "update", "no_update", "dry_run_update", "tz_offset_hours"]
METADATA_KEYS = ["statuses", "custom_fields"]
STATUS_KEYS = ["id", "label", "type", "pipeline_id"]
CUSTOM_FIELD_KEYS = ["id", "name", "type", "accepts_multiple_values", "choices"]


@dataclass(frozen=True)
class Expect:
    """What a case expects of the plan; None means not checked."""

    fired: tuple[str, ...] | None = None
    not_fired: tuple[str, ...] = ()
    update: Mapping[str, Any] | None = None
    no_update: bool | None = None
    dry_run_update: Mapping[str, Any] | None = None
    tz_offset_hours: float | None = None


@dataclass(frozen=True)
class Case:
    """One rule test: an event, the metadata it runs with, and what the plan must be."""

    name: str
    event: Event
    expect: Expect
    position: Position
    metadata: Metadata | None = None


@dataclass
class CaseParser:
    """Turns one test file's nodes into cases, reporting every mistake."""

    report: Report
    read_event_file: EventReader | None = None
    metadata: Metadata | None = field(default=None)

    def cases(self, root: Node) -> list[Case]:
        """The cases of the file's root node."""
        fields = self._mapping(root, FILE_KEYS, "a test file")
        if fields is None:
            return []
        if "metadata" in fields:
            self.metadata = self._metadata(fields["metadata"][1])
        if not self._required(fields, ["tests"], root, "a test file"):
            return []
        tests = fields["tests"][1]
        if not isinstance(tests, SequenceNode):
            self.report.add(tests, f"tests needs a list of test cases; found {describe(tests)}")
            return []
        parsed = (self._case(node) for node in tests.value)
        return [case for case in parsed if case is not None]

    def _mapping(
        self, node: Node, allowed: list[str], what: str
    ) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            keys = ", ".join(allowed)
            self.report.add(
                node, f"{what} must be a mapping with keys {keys}; found {describe(node)}"
            )
            return None
        return keyed(node, allowed, self.report)

    def _required(
        self, fields: dict[str, tuple[Node, Node]], keys: list[str], node: Node, what: str
    ) -> bool:
        missing = [k for k in keys if k not in fields]
        for key in missing:
            self.report.add(node, f"{what} needs the key '{key}'; it is missing")
        return not missing

    def _case(self, node: Node) -> Case | None:
        fields = self._mapping(node, CASE_KEYS, "a test case")
        if fields is None:
            return None
        complete = self._required(fields, ["name", "expect"], node, "a test case")
        if ("event" in fields) == ("event_file" in fields):
            self.report.add(node, "a test case needs exactly one of event and event_file")
            complete = False
        name = self._name(fields.get("name"))
        events = [self._event(fields["event"][1])] if "event" in fields else []
        if "event_file" in fields:
            events.append(self._event_file(fields["event_file"][1]))
        # A case's own metadata (as `test --add-case` writes it) stands in for the file's.
        metadata = self._metadata(fields["metadata"][1]) if "metadata" in fields else self.metadata
        expect = self._expect(fields["expect"][1], metadata) if "expect" in fields else None
        if not complete or name is None or events[0] is None or expect is None:
            return None
        return Case(name, events[0], expect, position(node, self.report.file), metadata)

    def _name(self, field: tuple[Node, Node] | None) -> str | None:
        if field is None:
            return None
        name = to_python(field[1], self.report)
        if not isinstance(name, str) or not name:
            self.report.add(field[1], f"name must be non-empty text; found {describe(field[1])}")
            return None
        return name

    def _event(self, node: Node) -> Event | None:
        fields = self._mapping(node, EVENT_KEYS, "an event")
        if fields is None:
            return None
        raw = {key: to_python(value, self.report) for key, (_, value) in fields.items()}
        data = raw["data"] if isinstance(raw.get("data"), Mapping) else {}
        defaults = {
            "id": "ev_test",
            "object_type": "opportunity",
            "object_id": data.get("id") or "oppo_test",
            **({"action": SWEPT} if "sweep" in raw else {}),  # a sweep's event, as sweeps make
        }
        return self._built(node, lambda: event_from_dict({**defaults, **raw}))

    def _event_file(self, node: Node) -> Event | None:
        relative = to_python(node, self.report)
        if not isinstance(relative, str) or self.read_event_file is None:
            why = "a path to a JSON file" if self.read_event_file else "tests read from disk"
            self.report.add(node, f"event_file needs {why}; found {describe(node)}")
            return None
        try:
            raw = json.loads(self.read_event_file(relative))
        except (OSError, ValueError) as e:
            self.report.add(node, f"cannot read event file '{relative}': {e}")
            return None
        # A saved event of Close's log may lack its object (read with a non-admin key more
        # than an hour later): a case on it would test rules on an empty opportunity.
        if isinstance(raw, Mapping) and isinstance(raw.get("event"), Mapping):
            return self._built(node, lambda: require_payload(event_from_envelope(raw)))
        return self._built(node, lambda: require_payload(event_from_dict(raw)))

    def _built(self, node: Node, build: Callable[[], Event]) -> Event | None:
        try:
            return build()
        except EnvelopeError as e:
            self.report.add(node, f"invalid event: {e}")
            return None

    def _expect(self, node: Node, metadata: Metadata | None) -> Expect | None:
        fields = self._mapping(node, EXPECT_KEYS, "expect")
        if fields is None:
            return None
        if not fields:
            self.report.add(node, f"expect needs at least one of {', '.join(EXPECT_KEYS)}")
        values = {key: to_python(value, self.report) for key, (_, value) in fields.items()}
        checks = {
            "fired": _is_names, "not_fired": _is_names, "update": _is_mapping,
            "dry_run_update": _is_mapping, "no_update": _is_bool, "tz_offset_hours": _is_number,
        }  # fmt: skip
        for key, value in values.items():
            if not checks[key](value):
                self.report.add(
                    fields[key][1],
                    f"expect.{key} needs {_NEEDS[key]}; found {describe(fields[key][1])}",
                )
                return None
        names = {k: tuple(v) for k, v in values.items() if k in ("fired", "not_fired")}
        updates = {
            k: _ids(v, metadata) for k, v in values.items() if k in ("update", "dry_run_update")
        }
        return Expect(**{**values, **names, **updates})

    def _metadata(self, node: Node) -> Metadata | None:
        fields = self._mapping(node, METADATA_KEYS, "metadata")
        if fields is None:
            return None
        statuses = self._records(fields.get("statuses"), "statuses", ["id", "label", "type"])
        customs = self._records(fields.get("custom_fields"), "custom_fields", ["id", "name"])
        return Metadata(
            statuses=tuple(Status(**r) for r in statuses),
            custom_fields=tuple(_custom_field(r) for r in customs),
        )

    def _records(
        self, field: tuple[Node, Node] | None, key: str, needed: list[str]
    ) -> list[dict[str, Any]]:
        if field is None:
            return []
        allowed, what = _RECORDS[key]
        node = field[1]
        if not isinstance(node, SequenceNode):
            keys = ", ".join(allowed)
            found = describe(node)
            self.report.add(node, f"{key} needs a list of mappings with keys {keys}; found {found}")
            return []
        records = []
        for item in node.value:
            fields = self._mapping(item, allowed, what)
            if fields is not None and self._required(fields, needed, item, what):
                records.append({k: to_python(v, self.report) for k, (_, v) in fields.items()})
        return records


_RECORDS = {
    "statuses": (STATUS_KEYS, "a status"),
    "custom_fields": (CUSTOM_FIELD_KEYS, "a custom field"),
}
_NEEDS = {
    "fired": "a list of rule names",
    "not_fired": "a list of rule names",
    "update": "a mapping of fields to values",
    "dry_run_update": "a mapping of fields to values",
    "no_update": "true or false",
    "tz_offset_hours": "a number of hours such as -5 or 5.5",
}


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ids(update: Mapping[str, Any], metadata: Metadata | None) -> Mapping[str, Any]:
    """Expected keys may name custom fields as written; compare them by id."""
    if metadata is None:
        return update
    return {_key_by_id(key, metadata): value for key, value in update.items()}


def _custom_field(record: dict[str, Any]) -> CustomField:
    choices = record.get("choices")
    return CustomField(
        id=str(record["id"]),
        name=str(record["name"]),
        type=str(record.get("type", "text")),
        accepts_multiple_values=bool(record.get("accepts_multiple_values", False)),
        choices=None if choices is None else tuple(choices),
    )


def _key_by_id(key: str, metadata: Metadata) -> str:
    if not key.startswith("custom."):
        return key
    base, suffix = key, ""
    for ending in (".add", ".remove"):
        if key.endswith(ending):
            base, suffix = key[: -len(ending)], ending
    known = metadata.custom_field(base[len("custom.") :])
    return key if known is None else f"custom.{known.id}{suffix}"
