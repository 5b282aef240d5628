"""Builders shared by the rule engine's unit tests: events and metadata as plain data."""

from __future__ import annotations

from typing import Any

from service.core.events import Event, event_from_dict
from service.core.rules.model import CustomField, Metadata, Status


def make_event(
    action: str = "updated",
    *,
    data: dict[str, Any] | None = None,
    previous_data: dict[str, Any] | None = None,
    changed_fields: list[str] | None = None,
    date_created: str = "2026-05-04T12:00:00Z",
    **extra: Any,
) -> Event:
    """An opportunity event the way Close sends one, with defaults for what a test ignores."""
    return event_from_dict(
        {
            "id": "ev_1",
            "object_type": "opportunity",
            "action": action,
            "object_id": "oppo_1",
            "date_created": date_created,
            "data": data or {},
            "previous_data": previous_data or {},
            "changed_fields": changed_fields or [],
            **extra,
        }
    )


METADATA = Metadata(
    statuses=(
        Status("stat_active_a", "Active", "active", "pipe_a"),
        Status("stat_won_a", "Won", "won", "pipe_a"),
        Status("stat_active_b", "Active", "active", "pipe_b"),
        Status("stat_won_b", "Won", "won", "pipe_b"),
    ),
    custom_fields=(
        CustomField("cf_seg", "Segment", "choices", True, ("SMB", "Enterprise", "No")),
        CustomField("cf_src", "Source", "text"),
        CustomField("cf_renew", "Renewal date", "date"),
    ),
)
