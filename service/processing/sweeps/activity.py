"""When a deal moved to its current status, from Close's status-change activities.

`GET activity/status_change/opportunity/?opportunity_id=...` lists a deal's status changes
(close-api-notes.md section 8). The latest change into the deal's current status is the
moment it got there: for a won deal, when it was won. Deals that never changed status
through Close (some imports) have none, and rules fall back to another field
(`date_of(date_status_changed, date_updated)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.adapters.close import JSONAPI
from service.core.events import parse_close_time

STATUS_CHANGES_PATH = "activity/status_change/opportunity/"
# Close lists activities newest first; one page holds the latest change of any real deal.
STATUS_CHANGES_LIMIT = 100
_FIELDS = "new_status_id,new_status_type,activity_at,date_created"


def status_changed_at(client: JSONAPI, *, opportunity: Mapping[str, Any]) -> str | None:
    """When the deal last moved into the status it holds now (ISO 8601), or None."""
    params = {
        "opportunity_id": str(opportunity["id"]),
        "_limit": str(STATUS_CHANGES_LIMIT),
        "_fields": _FIELDS,
    }
    page = client.request_json("GET", STATUS_CHANGES_PATH, params=params)
    data = page.get("data")
    changes = [a for a in data if isinstance(a, Mapping)] if isinstance(data, list) else []
    moments = [_moment(a) for a in changes if _is_into_current(a, opportunity)]
    known = [m for m in moments if m is not None]
    return max(known, key=lambda m: parse_close_time(m, what="activity_at"), default=None)


def _is_into_current(activity: Mapping[str, Any], opportunity: Mapping[str, Any]) -> bool:
    status_id = opportunity.get("status_id")
    if status_id:
        return bool(activity.get("new_status_id") == status_id)
    return bool(activity.get("new_status_type") == opportunity.get("status_type"))


def _moment(activity: Mapping[str, Any]) -> str | None:
    raw = activity.get("activity_at") or activity.get("date_created")
    try:
        parse_close_time(raw, what="activity_at")
    except ValueError:
        return None
    return str(raw)
