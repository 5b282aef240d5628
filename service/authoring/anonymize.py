"""A real Close event with its personal data replaced, to be kept in a rule test.

What is kept is listed, not what is removed: ids, numbers, true/false, dates, statuses,
money and the values of custom fields whose type holds no free text (choices, numbers,
dates, users, contacts) stay as Close sent them; any other text (names, emails, phone
numbers, notes, descriptions, text custom fields, and keys Close may add one day) becomes a
placeholder. A key nobody listed is therefore scrubbed, never leaked.

Placeholders are stable within an event: one text becomes one placeholder wherever it
appears, so a field that did not change (the same text in `data` and `previous_data`) still
did not, and one that changed still did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.authoring.naming import CUSTOM_PREFIX
from service.core.events import is_close_id
from service.core.rules.model import Metadata

# Opportunity keys whose text is Close's vocabulary or a code, never a person's words.
KEPT_TEXT_KEYS = frozenset(
    {
        "status_label", "status_type", "status_display_name", "pipeline_name",
        "value_period", "value_currency", "value_formatted", "object_type", "action",
    }
)  # fmt: skip
# Custom field types whose values are picked or typed as numbers, dates and ids: no free text.
KEPT_CUSTOM_TYPES = frozenset({"choices", "number", "date", "datetime", "user", "contact"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE = re.compile(r"\+?[\d\s().-]{7,}")


@dataclass
class Scrubber:
    """Replaces the personal text of one event; remembers what it replaced, by key."""

    metadata: Metadata | None = None
    replaced: set[str] = field(default_factory=set)  # keys (custom fields by name)
    _seen: dict[str, int] = field(default_factory=dict)  # text -> its placeholder's number

    def event(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The event with `data` and `previous_data` scrubbed; its other keys as they are."""
        scrubbed = dict(raw)
        for key in ("data", "previous_data"):
            payload = raw.get(key)
            if isinstance(payload, Mapping):
                scrubbed[key] = self.payload(payload)
        return scrubbed

    def payload(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """An opportunity's fields, scrubbed."""
        return {key: self._value(key, value, top=True) for key, value in data.items()}

    def _value(self, key: str, value: Any, *, top: bool = False) -> Any:
        if top and key.startswith(CUSTOM_PREFIX):
            return self._custom(key[len(CUSTOM_PREFIX) :], value)
        if isinstance(value, Mapping):
            if top and key == "custom":  # Close's deprecated nested form: name -> value
                return {k: self._custom(k, v) for k, v in value.items()}
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(key, item) for item in value]
        if not isinstance(value, str) or _kept_text(key, value):
            return value
        return self._placeholder(key, value)

    def _custom(self, ref: str, value: Any) -> Any:
        known = self.metadata.custom_field(ref) if self.metadata is not None else None
        if known is not None and known.type in KEPT_CUSTOM_TYPES:
            return value
        if isinstance(value, list):
            return [self._custom(ref, item) for item in value]
        if not isinstance(value, str) or value == "":
            return value
        return self._placeholder(CUSTOM_PREFIX + (known.name if known else ref), value)

    def _placeholder(self, key: str, text: str) -> str:
        self.replaced.add(key)
        number = self._seen.setdefault(text, len(self._seen) + 1)
        if _EMAIL.fullmatch(text):
            return f"person{number}@example.com"
        if _PHONE.fullmatch(text) and sum(c.isdigit() for c in text) >= 7:
            return f"+1 555 01{number:02d}"
        return f"{key} {number}"


def _kept_text(key: str, text: str) -> bool:
    if key in KEPT_TEXT_KEYS or text == "":
        return True
    if (key == "id" or key.endswith(("_id", "_ids", "_by"))) and is_close_id(text):
        return True
    return key.startswith("date_") and _DATE.fullmatch(text) is not None


def scrub_event(
    raw: Mapping[str, Any], metadata: Metadata | None
) -> tuple[dict[str, Any], set[str]]:
    """(the event with its personal data replaced, the keys that were replaced)."""
    scrubber = Scrubber(metadata)
    return scrubber.event(raw), scrubber.replaced
