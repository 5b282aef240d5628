"""Whether an event is the echo of dealkeeper's own write: it shows exactly the changes the
write made, and nothing else. Pure; service/adapters/ownwrites.py keeps the receipts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.core.events import Event
from service.core.reconcile import written_field

# Fields Close changes on its own along with the ones a write sends: an echo of our write
# may show them changed too. Any other changed field is someone else's change.
SIDE_EFFECT_FIELDS = frozenset(
    {
        "date_updated",
        "updated_by",
        "updated_by_name",
        "status_label",
        "status_type",
        "status_display_name",
        "date_won",
        "date_lost",
        "value_formatted",
        "expected_value",
        "annualized_value",
        "annualized_expected_value",
    }
)


def matches_receipt(update: Mapping[str, Any], event: Event) -> bool:
    """True when the event shows exactly the changes this update made, and nothing else."""
    changed = set(event.changed_fields) | set(event.previous_data)
    written = {written_field(key) for key in update}
    if not update or changed - written - SIDE_EFFECT_FIELDS:
        return False
    return all(_shows(key, value, event, changed) for key, value in update.items())


def _shows(key: str, value: Any, event: Event, changed: set[str]) -> bool:
    """True when the event shows this one key of a PUT body taking effect."""
    field = written_field(key)
    if field not in changed:
        return False
    after = event.data.get(field)
    if not key.endswith((".add", ".remove")):
        return field != key or bool(after == value)
    values = after if isinstance(after, list) else []
    if field not in event.previous_data:
        return (value in values) == key.endswith(".add")
    before = event.previous_data[field]
    expected = [v for v in (before if isinstance(before, list) else []) if v != value]
    if key.endswith(".add"):
        expected.append(value)
    return sorted(map(str, expected)) == sorted(map(str, values))
