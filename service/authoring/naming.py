"""Close's update keys as people read them: `custom.cf_4Xk...` shown by the field's name.

A worker sends custom fields by id; explanations and backtests show the name the rule
author wrote, so `custom.cf_4Xk....add` reads `custom.Segment.add`.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.core.rules import Metadata

CUSTOM_PREFIX = "custom."


def field_names(metadata: Metadata | None) -> dict[str, str]:
    """Custom field id -> name, from Close's metadata (empty offline)."""
    if metadata is None:
        return {}
    return {field.id: field.name for field in metadata.custom_fields}


def readable_key(key: str, names: Mapping[str, str]) -> str:
    """`custom.cf_x.add` -> `custom.Segment.add` when the id is known; other keys as they are."""
    if not key.startswith(CUSTOM_PREFIX):
        return key
    rest = key[len(CUSTOM_PREFIX) :]
    for suffix in (".add", ".remove", ""):
        field_id = rest.removesuffix(suffix) if suffix else rest
        if field_id in names and (not suffix or rest.endswith(suffix)):
            return f"{CUSTOM_PREFIX}{names[field_id]}{suffix}"
    return key
