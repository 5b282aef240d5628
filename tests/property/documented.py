"""Close's documented shapes, as the property tests vary them.

Each shape follows ../shared/reference/close-api-notes.md (our reading of Close's developer
documentation, which names each source), checked against the example on
developer.close.com/api/resources/webhooks. The ids of what the test's deal is made of (the
deal, its lead, status, pipeline, owner and organization) are the fake Close's, as the deal
lives there. Only shapes Close documents are here: the variations
(tests/property/variations.py) do the rest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# close-api-notes.md section 1, "Official example: an opportunity status change to Won",
# from https://developer.close.com/api/resources/webhooks (the event keys from
# https://developer.close.com/api/resources/events, "Event format").
WEBHOOK_SUBSCRIPTION_ID = "whsub_8AmjKCZYT3zI8eZoi4HhFC"
EVENT_ID = "ev_2sYKRjcrA79yKxi3S4Crd7"  # the example's, as developer.close.com shows it

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
    # `custom.cf_...` keys with their values: flat keys in `data`, as Close's Webhook
    # Filters page reads them (close-api-notes.md section 1); none in the 2019 example.
    custom: dict[str, Any] = field(default_factory=dict)


def won_opportunity(deal: Deal) -> dict[str, Any]:
    """`event.data` of the webhook example (section 1), with the keys of section 8."""
    return {
        "id": deal.opportunity_id,
        "organization_id": deal.organization_id,
        "lead_id": deal.lead_id,
        # The example's people and names (developer.close.com/api/resources/webhooks);
        # its user and contact ids are the fake's own or none, as the deal lives there.
        "lead_name": "KLine",
        "contact_id": None,
        "contact_name": "Mr. Jones",
        "user_id": "user_fake",
        "user_name": "Joe Kemp",
        "created_by": "user_fake",
        "created_by_name": "Joe Kemp",
        "updated_by": "user_fake",
        "updated_by_name": "Joe Kemp",
        "status_id": deal.status_id,
        "status_label": "Won",
        "status_type": "won",
        # Added to the opportunity since the 2019 example (section 8; changelog 2024-03-27).
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
        "date_created": "2019-01-15T12:41:24.496000+00:00",
        "date_updated": "2019-01-15T12:48:23.392000+00:00",
        **deal.custom,
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
            "status_id": "stat_3FD9DnGUCJzccBKTh8LiiKoyVPpMJsOkJdcGoA5AYKH",
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
