"""Which key of Close's opportunity a field name reads and writes, and what changed.

`status` reads `status_label` and writes `status_id`. `custom.NAME` and `custom.cf_ID`
become Close's flat `custom.cf_ID` key when metadata is known; offline (no metadata) they
stay as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from service.core.events import Event
from service.core.rules.evaluation.values import values_equal
from service.core.rules.model import AllOf, AnyOf, Condition, ConditionNode, Metadata, Not

CUSTOM_PREFIX = "custom."
STATUS_FIELD = "status"
# Offline, `set: {status: X}` goes out under Close's deprecated label key `status`.
_READ_ALIASES = {STATUS_FIELD: "status_label"}


@dataclass(frozen=True)
class FieldRef:
    """Where a field lives in Close's data."""

    key: str  # flat key: "status_label", "value", "custom.cf_abc"
    nested: tuple[str, ...] = ()  # keys in the deprecated nested `custom` dict

    def is_in(self, data: Mapping[str, Any]) -> bool:
        """True when the data carries the field at all (even as null)."""
        if self.key in data:
            return True
        nested = data.get("custom")
        return isinstance(nested, Mapping) and any(k in nested for k in self.nested)

    def read(self, data: Mapping[str, Any]) -> Any:
        """The field's value in the data; None when absent."""
        if self.key in data:
            return data[self.key]
        nested = data.get("custom")
        if isinstance(nested, Mapping):
            return next((nested[k] for k in self.nested if k in nested), None)
        return None


def custom_ref(field: str) -> str | None:
    """`Segment` for `custom.Segment`; None for a standard field."""
    return field[len(CUSTOM_PREFIX) :] if field.startswith(CUSTOM_PREFIX) else None


def standard_key(field: str) -> str | None:
    """The key a standard field is read from (`status` reads `status_label`); None for a
    custom field, whose key depends on the metadata."""
    return None if field.startswith(CUSTOM_PREFIX) else _READ_ALIASES.get(field, field)


def field_ref(field: str, metadata: Metadata | None) -> FieldRef | None:
    """Where `field` (as written in a rule) is read from; None for an unknown custom field."""
    ref = custom_ref(field)
    if ref is None:
        return FieldRef(_READ_ALIASES.get(field, field))
    if metadata is None:
        return FieldRef(field, (ref,))
    known = metadata.custom_field(ref)
    if known is None:
        return None
    return FieldRef(f"{CUSTOM_PREFIX}{known.id}", (known.id, known.name))


def has_changed(event: Event, ref: FieldRef) -> bool:
    """True when the event changed the field; a created field changed from null."""
    if event.action == "created":
        return ref.read(event.state) is not None
    if event.action != "updated":
        return False
    if ref.key in event.changed_fields:
        return True
    previous = event.previous_data
    return ref.is_in(previous) and not values_equal(ref.read(previous), ref.read(event.state))


def previous_value(event: Event, ref: FieldRef) -> Any:
    """The value before the event: null on a created event."""
    return None if event.action == "created" else ref.read(event.previous_data)


def condition_fields(node: ConditionNode) -> Iterator[str]:
    """Every field name a condition tree reads, in order."""
    for leaf in condition_leaves(node):
        yield leaf.field


def condition_leaves(node: ConditionNode) -> Iterator[Condition]:
    """Every field test of a condition tree, in order."""
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, AllOf | AnyOf):
        for child in node.conditions:
            yield from condition_leaves(child)
    elif isinstance(node, Not):
        yield from condition_leaves(node.condition)
