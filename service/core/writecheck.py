"""Whether Close took a write: its answer to the PUT compared with what was sent.

Close answers 200 to a PUT carrying keys it does not act on: its validation skips keys it
does not know, and fields it only returns (`date_lost`, ...) are not writable
(close-api-notes.md sections 7 and 13: "misspelled fields may be dropped without any
error. Check the response object after writes."). So a 200 alone does not say the deal
holds the update.

A key counts as taken when the answer holds the value sent, or holds a value other than
the one read just before the write: Close normalised it (a user's name stored as the
user's id, a datetime moved to UTC, a number as a float). Only a field the answer shows as
it was (absent, if it was absent: Close leaves empty custom fields out) is not taken. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from service.core.rules.evaluation.dates import parse_date_value
from service.core.rules.evaluation.fields import FieldRef, field_ref
from service.core.rules.evaluation.values import as_list, holds_value, same_members, values_equal
from service.core.rules.model import Metadata

_LIST_EDITS = (".add", ".remove")


def not_taken(
    update: Mapping[str, Any],
    *,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    metadata: Metadata | None = None,
) -> tuple[str, ...]:
    """The keys of `update` (a PUT body) that Close's answer `after` shows it did not take,
    `before` being the deal as read just before the write. An empty answer says nothing,
    so nothing is found in it."""
    if not after:
        return ()
    return tuple(
        key for key, value in update.items() if not _taken(key, value, before, after, metadata)
    )


def field_names(keys: tuple[str, ...]) -> list[str]:
    """The fields the keys of a PUT body write, once each, in order (`custom.cf_x.add` and
    `custom.cf_x.remove` both write `custom.cf_x`)."""
    names = [_edited_field(key) for key in keys]
    return list(dict.fromkeys(names))


def _taken(
    key: str, sent: Any, before: Mapping[str, Any], after: Mapping[str, Any], meta: Metadata | None
) -> bool:
    field = _edited_field(key)
    # A custom field the metadata does not know is still read by its id.
    ref = field_ref(field, meta) or FieldRef(field, (field.removeprefix("custom."),))
    then, now = ref.read(before), ref.read(after)
    if key.startswith("custom.") and key.endswith(_LIST_EDITS):
        held = holds_value(as_list(now), sent)
        if held == key.endswith(".add"):
            return True
        return not _same(then, now)
    return _same(sent, now) or not _same(then, now)


def _edited_field(key: str) -> str:
    """The field a key writes: `custom.cf_x.add` edits `custom.cf_x`; `status` (a label)
    is read back as `status_label` through field_ref."""
    if key.startswith("custom."):
        for suffix in _LIST_EDITS:
            if key.endswith(suffix):
                return key.removesuffix(suffix)
    return key


def _same(a: Any, b: Any) -> bool:
    """Equal as Close may give a value back: a list in any order (a single value as a
    list of one), numbers by value, moments as moments, a date as the day of a datetime."""
    if isinstance(a, list) or isinstance(b, list):
        return same_members(as_list(a), as_list(b))
    return values_equal(a, b) or _same_day(a, b)


def _same_day(a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    left, right = parse_date_value(a), parse_date_value(b)
    days = [d.date() if isinstance(d, datetime) else d for d in (left, right)]
    kinds = {type(left), type(right)}
    return kinds == {date, datetime} and days[0] == days[1]
