"""Close's documented shapes, as the property tests vary them.

The delivery is Close's own webhook example, read from the contract fixture
(tests/contract/fixtures/webhook-opportunity-won.json, copied from
developer.close.com/api/resources/webhooks); the other shapes follow
../shared/reference/close-api-notes.md (our reading of Close's documents, which names each
source). The ids of what the test's deal is made of (the
deal, its lead, status, pipeline, owner and organization) are the fake Close's, as the deal
lives there. Only shapes Close documents are here: the variations
(tests/property/variations.py) do the rest.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import REPO

EXAMPLE = REPO / "tests" / "contract" / "fixtures" / "webhook-opportunity-won.json"

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


def won_event(deal: Deal) -> dict[str, Any]:
    """`event` of the webhook example, a status change to Won, as Close publishes it
    (tests/contract/fixtures/webhook-opportunity-won.json), with the ids that must be the
    fake's (deal, lead, status, organization, people) swapped in, and the keys added to the
    opportunity since 2019 (close-api-notes.md section 8; changelog 2024-03-27)."""
    example = json.loads(EXAMPLE.read_text())["event"]
    swap = {
        example["object_id"]: deal.opportunity_id,
        example["data"]["id"]: deal.opportunity_id,  # the example's two ids differ
        example["lead_id"]: deal.lead_id,
        example["organization_id"]: deal.organization_id,
        example["data"]["status_id"]: deal.status_id,
        example["user_id"]: "user_fake",
        example["data"]["contact_id"]: None,
    }
    event = _swapped(example, swap)
    event["meta"]["request_path"] = f"/api/v1/opportunity/{deal.opportunity_id}/"
    event["data"].update(
        status_display_name="Won",
        pipeline_id=deal.pipeline_id,
        pipeline_name="Sales",
        expected_value=100000,
        annualized_value=100000,
        annualized_expected_value=100000,
        **deal.custom,
    )
    assert EVENT_ID == event["id"]
    return dict(event)


def _swapped(value: Any, swap: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _swapped(item, swap) for key, item in value.items()}
    if isinstance(value, list):
        return [_swapped(item, swap) for item in value]
    return swap.get(value, value) if isinstance(value, str) else value


def delivery(event: dict[str, Any]) -> dict[str, Any]:
    """The body of one webhook POST: two top-level keys (section 1)."""
    return {"subscription_id": WEBHOOK_SUBSCRIPTION_ID, "event": copy.deepcopy(event)}
