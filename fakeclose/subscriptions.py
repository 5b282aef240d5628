"""Close's webhook subscription endpoints: GET/POST /webhook/, GET/PUT/DELETE /webhook/<id>/.

Shapes follow Close's answers: `signature_key` on create and on a single GET (as Close's spec
shows) but never in a list; the delivery-health fields (`counters`, `health_status`,
`history`, `latest_error`, `pause_reason`, `recent_consecutive_fail_buckets_cnt`) on every
subscription. The fake does not deliver through these subscriptions (`FakeClose.
deliver_webhooks_to` does that); tests set the health fields through `Subscriptions`.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from fakeclose.queries import BadQueryError, paginate
from fakeclose.store import DEALKEEPER_USER_ID, new_id

EXTENSION = "fakeclose.subscriptions"
STATUSES = ("active", "paused")
UPDATABLE = frozenset({"url", "events", "status", "verify_ssl"})
HEALTH_FIELDS = frozenset(
    {
        "counters",
        "health_status",
        "history",
        "latest_error",
        "pause_reason",
        "recent_consecutive_fail_buckets_cnt",
        "status",
    }
)
NOT_FOUND_MESSAGE = "Empty query: WebhookSubscription matching query does not exist."

api = Blueprint("webhook_subscriptions", __name__, url_prefix="/api/v1")


class UnknownSubscriptionError(LookupError):
    """No subscription with that id: the API answers 404."""


class Subscriptions:
    """The organization's webhook subscriptions (thread-safe)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}

    def create(
        self, body: Mapping[str, Any], *, user_id: str = DEALKEEPER_USER_ID
    ) -> dict[str, Any]:
        """A new active subscription from a POST body; returns it with its signature_key."""
        unknown = set(body) - {"url", "events", "verify_ssl", "event_filter"}
        if unknown:
            raise BadQueryError(f"unknown fields: {', '.join(sorted(unknown))}")
        moment = self._stamp()
        item = {
            "id": new_id("whsub"),
            "url": _url(body.get("url")),
            "events": _events(body.get("events")),
            "verify_ssl": _flag(body.get("verify_ssl", True), "verify_ssl"),
            "status": "active",
            "signature_key": secrets.token_hex(32),
            "created_by": user_id,
            "updated_by": user_id,
            "date_created": moment,
            "date_updated": moment,
            **_fresh_health(),
        }
        with self._lock:
            self._items[item["id"]] = item
            return copy.deepcopy(item)

    def get(self, subscription_id: str) -> dict[str, Any]:
        """One subscription, signature_key included."""
        with self._lock:
            return copy.deepcopy(self._require(subscription_id))

    def all(self) -> list[dict[str, Any]]:
        """Every subscription, oldest first, as a list shows them (no signature_key)."""
        with self._lock:
            items = [copy.deepcopy(i) for i in self._items.values()]
        return [{k: v for k, v in i.items() if k != "signature_key"} for i in items]

    def update(self, subscription_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a PUT: only the fields sent change; unknown fields are refused."""
        unknown = set(body) - UPDATABLE
        if unknown:
            raise BadQueryError(f"unknown fields: {', '.join(sorted(unknown))}")
        changes = _changes(body)
        with self._lock:
            item = self._require(subscription_id)
            item.update(changes, date_updated=self._stamp())
            if "status" in changes:
                item["pause_reason"] = "api" if changes["status"] == "paused" else None
            return copy.deepcopy(item)

    def delete(self, subscription_id: str) -> None:
        with self._lock:
            self._require(subscription_id)
            del self._items[subscription_id]

    def set_health(self, subscription_id: str, **fields: Any) -> None:
        """Tests: set what Close reports about deliveries (status, pause_reason, counters...)."""
        unknown = set(fields) - HEALTH_FIELDS
        if unknown:
            raise ValueError(f"not a health field: {', '.join(sorted(unknown))}")
        with self._lock:
            self._require(subscription_id).update(copy.deepcopy(fields))

    def _require(self, subscription_id: str) -> dict[str, Any]:
        try:
            return self._items[subscription_id]
        except KeyError:
            raise UnknownSubscriptionError(subscription_id) from None

    def _stamp(self) -> str:
        return self._now().replace(tzinfo=None).isoformat()  # Close writes these without a zone


def _fresh_health() -> dict[str, Any]:
    return {
        "counters": {},
        "health_status": None,
        "history": {"errors": [], "successes": []},
        "latest_error": None,
        "pause_reason": None,
        "recent_consecutive_fail_buckets_cnt": 0,
    }


def _changes(body: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "url" in body:
        changes["url"] = _url(body["url"])
    if "events" in body:
        changes["events"] = _events(body["events"])
    if "verify_ssl" in body:
        changes["verify_ssl"] = _flag(body["verify_ssl"], "verify_ssl")
    if "status" in body:
        if body["status"] not in STATUSES:
            raise BadQueryError(f"status must be active or paused, got {body['status']!r}")
        changes["status"] = body["status"]
    return changes


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise BadQueryError("url: a valid http(s) URL is required")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadQueryError(f"{name} must be true or false")
    return value


def _events(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise BadQueryError("events: a non-empty list is required")
    events = []
    for item in value:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("object_type", "action")
        ):
            raise BadQueryError("events: each needs an object_type and an action")
        extra = item.get("extra_filter")
        if extra is not None and not isinstance(extra, dict):
            raise BadQueryError("events: extra_filter must be an object")
        events.append(
            {"object_type": item["object_type"], "action": item["action"], "extra_filter": extra}
        )
    return events


@api.record_once
def _install(state: BlueprintSetupState) -> None:
    backend = state.app.extensions["fakeclose"]
    state.app.extensions[EXTENSION] = Subscriptions(backend.store.now)


def subscriptions_of(app: Any) -> Subscriptions:
    """The subscriptions a fake's Flask app serves (werkzeug's server types it as any WSGI app)."""
    return cast(Subscriptions, app.extensions[EXTENSION])


def _subscriptions() -> Subscriptions:
    return subscriptions_of(current_app)


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadQueryError("the request body must be a JSON object")
    return body


@api.errorhandler(UnknownSubscriptionError)
def _not_found(_: UnknownSubscriptionError) -> tuple[Response, int]:
    return jsonify(error=NOT_FOUND_MESSAGE), 404


@api.get("/webhook/")
def list_subscriptions() -> Response:
    return jsonify(paginate(_subscriptions().all(), request.args))


@api.post("/webhook/")
def create_subscription() -> tuple[Response, int]:
    return jsonify(_subscriptions().create(_body())), 201


@api.get("/webhook/<subscription_id>/")
def get_subscription(subscription_id: str) -> Response:
    return jsonify(_subscriptions().get(subscription_id))


@api.put("/webhook/<subscription_id>/")
def update_subscription(subscription_id: str) -> Response:
    return jsonify(_subscriptions().update(subscription_id, _body()))


@api.delete("/webhook/<subscription_id>/")
def delete_subscription(subscription_id: str) -> Response:
    _subscriptions().delete(subscription_id)
    return jsonify({})
