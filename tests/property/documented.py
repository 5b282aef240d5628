"""Close's documented shapes, as the property tests vary them.

Each shape is copied from ../shared/reference/close-api-notes.md (our reading of Close's
developer documentation), which names its source; where the notes abbreviate an id
("stat_3FD9...") the id here is one of the fake Close's, since the test's deal lives there.
Only shapes Close documents are here: the variations (tests/property/variations.py) do the
rest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# close-api-notes.md section 1, "Official example: an opportunity status change to Won",
# from https://developer.close.com/api/resources/webhooks (the event keys from
# https://developer.close.com/api/resources/events, "Event format").
WEBHOOK_SUBSCRIPTION_ID = "whsub_8AmjKCZYT3zI8eZoi4HhFC"
EVENT_ID = "ev_2gFhVNhrbvdj9bMpkHx1y0"  # the notes give the `ev_` prefix, not the id

# The keys of `event` the notes confirm, and the ones they mark optional or unconfirmed.
EVENT_KEYS = (
    "id",
    "date_created",
    "date_updated",
    "organization_id",
    "user_id",
    "request_id",
    "api_key_id",
    "object_type",
    "object_id",
    "lead_id",
    "action",
    "changed_fields",
    "previous_data",
    "data",
    "meta",
)
# Without these the event cannot be told apart or judged (intake answers 400).
REQUIRED_EVENT_KEYS = ("id", "date_created", "object_type", "object_id", "action")

# Section 12 and the event-types page: the actions and object types Close documents.
DOCUMENTED_ACTIONS = ("created", "updated", "deleted", "merged", "completed", "sent")
DOCUMENTED_OBJECT_TYPES = (
    "opportunity",
    "lead",
    "activity.email",
    "status.opportunity",
    "custom_fields.opportunity",
    "status_change.opportunity",
    "activity.opportunity_status_change",
)
DOCUMENTED_STATUS_TYPES = ("active", "won", "lost")
# Section 8: `date_created`/`date_updated` of objects end in +00:00 with microseconds; the
# event's own `date_created` in the webhook example has no offset (section 1).
DOCUMENTED_TIMESTAMPS = ("2019-01-15T12:48:23.395000", "2026-06-19T11:04:54.421000+00:00")


@dataclass(frozen=True)
class Deal:
    """The ids an example names that must be the fake Close's for the deal to be real."""

    opportunity_id: str
    status_id: str  # of the status labelled Won
    pipeline_id: str
    lead_id: str
    organization_id: str


def won_opportunity(deal: Deal) -> dict[str, Any]:
    """`event.data` of the webhook example (section 1), with the keys of section 8."""
    return {
        "id": deal.opportunity_id,
        "organization_id": deal.organization_id,
        "lead_id": deal.lead_id,
        "lead_name": "Wayne Enterprises (Sample Lead)",
        "contact_id": None,
        "contact_name": None,
        "user_id": "user_fake",
        "user_name": "Fake User",
        "created_by": "user_fake",
        "created_by_name": "Fake User",
        "updated_by": "user_fake",
        "updated_by_name": "Fake User",
        "status_id": deal.status_id,
        "status_label": "Won",
        "status_type": "won",
        "status_display_name": "Won",
        "pipeline_id": deal.pipeline_id,
        "pipeline_name": "Sales",
        "confidence": 100,
        "date_won": "2019-01-15",
        "date_lost": None,
        "value": 100000,
        "value_formatted": "$1,000",
        "value_currency": "USD",
        "value_period": "one_time",
        "expected_value": 100000,
        "annualized_value": 100000,
        "annualized_expected_value": 100000,
        "note": "",
        "date_created": "2019-01-15T12:40:11.092000+00:00",
        "date_updated": "2019-01-15T12:48:23.392000+00:00",
    }


def won_event(deal: Deal) -> dict[str, Any]:
    """`event` of the webhook example: a status change to Won (section 1)."""
    return {
        "id": EVENT_ID,
        "date_created": "2019-01-15T12:48:23.395000",
        "date_updated": "2019-01-15T12:48:23.395000",
        "organization_id": deal.organization_id,
        "user_id": "user_fake",
        "request_id": "req_4S2L1JHMw1kyaidGAkgZdv",
        "api_key_id": None,
        "object_type": "opportunity",
        "object_id": deal.opportunity_id,
        "lead_id": deal.lead_id,
        "action": "updated",
        "changed_fields": [
            "confidence",
            "date_updated",
            "status_id",
            "status_label",
            "status_type",
        ],
        "previous_data": {
            "status_type": "active",
            "confidence": 70,
            "date_updated": "2019-01-15T12:47:39.873000+00:00",
            "status_id": "stat_3FD9active",  # abbreviated in the notes
            "status_label": "Active",
        },
        "data": won_opportunity(deal),
        "meta": {
            "request_method": "PUT",
            "request_path": f"/api/v1/opportunity/{deal.opportunity_id}/",
        },
    }


def delivery(event: dict[str, Any]) -> dict[str, Any]:
    """The body of one webhook POST: two top-level keys (section 1)."""
    return {"subscription_id": WEBHOOK_SUBSCRIPTION_ID, "event": copy.deepcopy(event)}
