"""Close's webhook subscriptions (/webhook/): find ours, create or update it, resume it.

Close returns a subscription's `signature_key` when it creates it (its spec also shows it on a
single GET); a list never carries it. Subscriptions are matched by URL, so running
`dealkeeper subscribe` again finds the one it made instead of adding a second.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.adapters.close import JSONAPI, path_segment

PATH = "webhook/"
PAGE_SIZE = 100
OBJECT_TYPE = "opportunity"
ACTIONS = ("created", "updated", "deleted")


@dataclass(frozen=True)
class Subscribed:
    """What `ensure_subscription` did: created, updated or unchanged, and Close's answer."""

    subscription: dict[str, Any]
    outcome: str
    duplicates: tuple[str, ...] = ()  # further subscriptions delivering to the same URL


def own_changes_filter(api_key_ids: Iterable[str]) -> dict[str, Any] | None:
    """Close's Webhook Filter for "not caused by any of these API keys"; None without ids."""
    filters = [
        {
            "type": "field_accessor",
            "field": "api_key_id",
            "filter": {"type": "not_equals", "value": key_id},
        }
        for key_id in sorted(set(api_key_ids))
    ]
    if len(filters) <= 1:
        return filters[0] if filters else None
    return {"type": "and", "filters": filters}


def wanted_events(*, extra_filter: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Opportunity created, updated and deleted, each with the filter when there is one."""
    events: list[dict[str, Any]] = []
    for action in ACTIONS:
        event: dict[str, Any] = {"object_type": OBJECT_TYPE, "action": action}
        if extra_filter is not None:
            event["extra_filter"] = dict(extra_filter)
        events.append(event)
    return events


def list_subscriptions(api: JSONAPI) -> list[dict[str, Any]]:
    """Every subscription the key can see, all pages."""
    found: list[dict[str, Any]] = []
    while True:
        params = {"_skip": str(len(found)), "_limit": str(PAGE_SIZE)}
        page = api.request_json("GET", PATH, params=params)
        data = [item for item in page.get("data") or [] if isinstance(item, dict)]
        found.extend(data)
        if not data or not page.get("has_more"):
            return found


def for_url(subscriptions: Iterable[Mapping[str, Any]], url: str) -> list[dict[str, Any]]:
    """The subscriptions delivering to `url` (a trailing slash does not matter)."""
    wanted = url.rstrip("/")
    return [dict(s) for s in subscriptions if str(s.get("url", "")).rstrip("/") == wanted]


def for_opportunities(subscriptions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The subscriptions with at least one opportunity event."""
    return [
        dict(s)
        for s in subscriptions
        if any(e.get("object_type") == OBJECT_TYPE for e in s.get("events") or [])
    ]


def same_events(left: Sequence[Mapping[str, Any]], right: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two event lists ask for the same deliveries (order and null filters aside)."""
    return _event_keys(left) == _event_keys(right)


def _event_keys(events: Sequence[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (
            str(e.get("object_type")),
            str(e.get("action")),
            json.dumps(e.get("extra_filter"), sort_keys=True),
        )
        for e in events
    }


def ensure_subscription(
    api: JSONAPI, *, url: str, events: Sequence[Mapping[str, Any]]
) -> Subscribed:
    """Create the subscription for `url`, or bring the existing one's events in line."""
    found = for_url(list_subscriptions(api), url)
    if not found:
        body = {"url": url, "events": [dict(e) for e in events]}
        return Subscribed(api.request_json("POST", PATH, body=body), "created")
    current, duplicates = found[0], tuple(str(s.get("id")) for s in found[1:])
    if same_events(current.get("events") or [], events):
        return Subscribed(current, "unchanged", duplicates)
    body = {"events": [dict(e) for e in events]}
    updated = api.request_json("PUT", subscription_path(current["id"]), body=body)
    return Subscribed(updated, "updated", duplicates)


def subscription_path(subscription_id: str) -> str:
    """`webhook/<id>/`, the id one segment."""
    return f"{PATH}{path_segment(subscription_id)}/"


def resume(api: JSONAPI, subscription_id: str) -> dict[str, Any]:
    """Set a paused subscription active again; returns Close's answer."""
    return api.request_json("PUT", subscription_path(subscription_id), body={"status": "active"})


def without_secret(subscription: Mapping[str, Any]) -> dict[str, Any]:
    """The subscription without its signature_key, for showing and logging."""
    return {k: v for k, v in subscription.items() if k != "signature_key"}
