"""Facts: one event as compiled rules read it.

A thousand rules ask the same few questions of one event: the value of a field, where a
custom field lives for this metadata, what date a field's text names, the Scope of a rule's
zone. Facts answers each once per event and remembers the answer; the event and the
metadata are immutable, so the answers cannot go stale.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from service.core.events import Event
from service.core.rules.evaluation.conditions import Scope
from service.core.rules.evaluation.dates import as_moment, parse_date_value
from service.core.rules.evaluation.fields import FieldRef, custom_ref, field_ref, standard_key
from service.core.rules.evaluation.texts import cap_text, truncations
from service.core.rules.model import Metadata, Truncated


def value_key(field: str) -> Hashable:
    """The key `Facts.values` holds `field` (as written in a rule) under: a standard field's
    own key, or for a custom field a tuple, which no key of Close's data can be."""
    key = standard_key(field)
    return (field,) if key is None else key


class _Values(dict[Any, Any]):
    """The event's state, plus each field it lacks and each custom field, read on first use."""

    __slots__ = ("_facts",)

    def __init__(self, facts: Facts) -> None:
        super().__init__(facts.state)
        self._facts = facts
        for cut in facts.truncated:  # usually none
            if not cut.previous and cut.field in self:
                self[cut.field] = cap_text(self[cut.field])

    def __missing__(self, key: Hashable) -> Any:
        value = self._facts.read_custom(key[0]) if isinstance(key, tuple) else None
        self[key] = value  # a field absent from the state reads as null, as FieldRef.read does
        return value


class Facts:
    """The event, its state, and answers worked out from them, made on first use."""

    __slots__ = ("_dates", "_refs", "_scopes", "event", "metadata", "state", "truncated", "values")

    def __init__(self, event: Event, metadata: Metadata | None) -> None:
        self.event = event
        self.metadata = metadata
        self.state: Mapping[str, Any] = event.state  # whole: writes compare with what it holds
        # The texts conditions and templates read only the start of (texts.py).
        self.truncated: tuple[Truncated, ...] = truncations(event)
        # Field values by value_key(field): what compiled tests read, one dict lookup each.
        self.values: dict[Any, Any] = _Values(self)
        self._refs: dict[str, FieldRef | None] = {}
        self._scopes: dict[str, Scope] = {}
        self._dates: dict[str, date | datetime | None] = {}

    def ref(self, field: str) -> FieldRef | None:
        """Where `field` (as written in a rule) is read; None for an unknown custom field."""
        try:
            return self._refs[field]
        except KeyError:
            found = self._refs[field] = field_ref(field, self.metadata)
            return found

    def read_custom(self, field: str) -> Any:
        """The value of a custom field, as rules read it; None when absent or unknown to the
        metadata."""
        ref = self.ref(field)
        return None if ref is None else cap_text(ref.read(self.state))

    def unknown_names(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        """The names of those custom fields (each written once) the metadata does not know."""
        if self.metadata is None:
            return ()
        return tuple(str(custom_ref(field)) for field in fields if self.ref(field) is None)

    def scope(self, timezone: str) -> Scope:
        """What the interpreter's operators are evaluated against, for a rule in `timezone`."""
        found = self._scopes.get(timezone)
        if found is None:
            found = self._scopes[timezone] = Scope(self.event, self.metadata, timezone)
        return found

    def date_value(self, value: Any) -> date | datetime | None:
        """parse_date_value(value), parsed once per event for text."""
        if type(value) is not str:
            return parse_date_value(value)
        try:
            return self._dates[value]
        except KeyError:
            found = self._dates[value] = parse_date_value(value)
            return found

    def age(self, value: Any, timezone: str) -> timedelta | None:
        """How long before the event the date in `value` is; None when it holds no date."""
        found = self.date_value(value)
        if found is None:
            return None
        return self.event.date_created - as_moment(found, timezone)
