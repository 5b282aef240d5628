"""Close's opportunity status-change activities, as the fake derives them from its events.

`GET activity/status_change/opportunity/?opportunity_id=...` lists, newest first, one
activity per status change the fake recorded: every `created` event and every `updated`
event that changed `status_id` (close-api-notes.md section 8). Opportunities seeded with
`add_opportunity` made no event, so they have no activity, as imported deals may not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from fakeclose.queries import BadQueryError, only_fields, paginate

api = Blueprint("activities", __name__, url_prefix="/api/v1/activity")


@api.get("/status_change/opportunity/")
def status_changes() -> Response:
    opportunity_id = request.args.get("opportunity_id")
    if not opportunity_id:
        raise BadQueryError("opportunity_id is required")
    store = current_app.extensions["fakeclose"].store
    with store.lock:
        found = [
            _activity(e) for e in reversed(store.events) if _is_status_change(e, opportunity_id)
        ]
    page = paginate(found, request.args)
    page["data"] = [only_fields(a, request.args.get("_fields")) for a in page["data"]]
    return jsonify(page)


def _is_status_change(event: Mapping[str, Any], opportunity_id: str) -> bool:
    if event["object_id"] != opportunity_id:
        return False
    return event["action"] == "created" or (
        event["action"] == "updated" and "status_id" in event["changed_fields"]
    )


def _activity(event: Mapping[str, Any]) -> dict[str, Any]:
    before, after = event["previous_data"], event["data"] or {}
    moment = event["date_created"] + "+00:00"  # the fake's events carry naive UTC times
    return {
        "id": "acti_" + event["id"].removeprefix("ev_"),
        "_type": "OpportunityStatusChange",
        "opportunity_id": event["object_id"],
        "lead_id": event["lead_id"],
        "user_id": event["user_id"],
        **{f"old_{k}": before.get(k) for k in ("status_id", "status_label", "status_type")},
        **{f"new_{k}": after.get(k) for k in ("status_id", "status_label", "status_type")},
        "opportunity_value": after.get("value"),
        "opportunity_confidence": after.get("confidence"),
        "opportunity_date_won": after.get("date_won"),
        "activity_at": moment,
        "date_created": moment,
    }
