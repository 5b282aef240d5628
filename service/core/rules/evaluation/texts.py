"""How much of a text rules read: its first MAX_TEXT_CHARS characters.

Text comes from anyone typing in Close. Matching takes time linear in it (patterns.py), but
a rule set reads a field once per condition and templates run filters over it, so the cap
bounds the work one event can ask for. Conditions (the interpreter and the compiled
predicates alike) and templates read every text value through cap_text; the plan names
each value that was cut (Plan.truncated), and the worker logs that with the field and the
lengths, never the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.core.events import Event
from service.core.rules.model import Truncated

# Ten times what a template may write (templates.MAX_OUTPUT_CHARS): a long note still reads
# whole, and a megabyte of webhook text is read in part.
MAX_TEXT_CHARS = 100_000
_NESTED_CUSTOM = "custom"  # Close's older form: {"custom": {"NAME": value}}


def cap_text(value: Any) -> Any:
    """`value` as rules read it: a text, or each text of a list, cut to MAX_TEXT_CHARS
    characters; anything else as it is."""
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS] if len(value) > MAX_TEXT_CHARS else value
    if isinstance(value, list) and _longest(value) > MAX_TEXT_CHARS:
        return [cap_text(item) for item in value]
    return value


def truncations(event: Event) -> tuple[Truncated, ...]:
    """Every text of the event that rules read only the start of, current values first."""
    found = _long_texts(event.state, previous=False)
    if event.previous_data is not event.state:
        found += _long_texts(event.previous_data, previous=True)
    return tuple(found)


def _long_texts(data: Mapping[str, Any], *, previous: bool) -> list[Truncated]:
    found = []
    for key, value in data.items():
        # Inline for plain text, the common case: this runs over every field of every event.
        length = len(value) if type(value) is str else _length(value)
        if length > MAX_TEXT_CHARS:
            found.append(Truncated(key, length, previous))
        elif key == _NESTED_CUSTOM and isinstance(value, Mapping):
            found += [
                Truncated(f"{_NESTED_CUSTOM}.{name}", length, previous)
                for name, inner in value.items()
                if (length := _length(inner)) > MAX_TEXT_CHARS
            ]
    return found


def _length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    return _longest(value) if isinstance(value, list) else 0


def _longest(values: list[Any]) -> int:
    return max((len(item) for item in values if isinstance(item, str)), default=0)
