"""The fake's HTTP face: Close's routes under /api/v1/, Basic auth, faults and rate limits.

Every request is recorded first, then may be delayed, then must authenticate, then may be
answered by an injected fault, then counts against its key's rate limit, then is served.
A fault or delay `after_serving` acts on the answer of a request that was served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from fakeclose import activities, subscriptions
from fakeclose.aggregates import list_aggregates
from fakeclose.eventlog import as_seen_by, list_events
from fakeclose.patch import PatchError, without_keys
from fakeclose.queries import (
    BadQueryError,
    build_filters,
    offset_zone,
    only_fields,
    paginate,
    sort_items,
)
from fakeclose.store import (
    DEALKEEPER_USER_ID,
    ORGANIZATION_ID,
    ORGANIZATION_NAME,
    USERS,
    Actor,
    MissingObjectError,
    Store,
    new_id,
)
from fakeclose.traffic import Fault, RecordedRequest, Traffic, group_of

API_PREFIX = "/api/v1/"
OPPORTUNITY_FILTERS = frozenset(
    {"lead_id", "user_id", "status_id", "status_label", "status_type", "value_period"}
)
NOT_FOUND_MESSAGE = "Empty query: Opportunity matching query does not exist."

_PHRASES = {status.value: status.phrase for status in HTTPStatus}

log = logging.getLogger("dealkeeper.fakeclose")
api = Blueprint("api", __name__, url_prefix=API_PREFIX.rstrip("/"))


@dataclass
class OpportunityListing:
    """How GET opportunity/ serves, within what Close documents. Its maximum `_limit`
    "can vary per resource" (so a page may hold fewer deals than asked, `has_more` telling
    the end), and `_fields` naming custom fields (`custom`, `custom.cf_X`) is documented
    for leads only (so a list may come without them)."""

    page_cap: int | None = None  # at most this many deals a page, whatever `_limit` asks
    custom_by_fields: bool = True  # False: `_fields` cannot name custom fields


@dataclass(frozen=True)
class Backend:
    """What the routes serve from."""

    store: Store
    traffic: Traffic
    api_keys: Mapping[str, str]  # API key -> api_key_id
    stopping: threading.Event  # cuts injected delays short when the fake stops
    admin: bool = True  # whether the API keys are an admin's (what the event log shows)
    listing: OpportunityListing = field(default_factory=OpportunityListing)
    # Custom roles (GET role/<id>/) and the one the keys' user holds, if any (role id under
    # "role_id"): Close's Roles API and /me/'s membership.
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    membership_role: dict[str, str] = field(default_factory=dict)


def create_app(backend: Backend) -> Flask:
    """The fake's Flask application."""
    app = Flask("fakeclose")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Close's key order
    app.extensions["fakeclose"] = backend
    app.before_request(_gatekeeper)
    app.after_request(_finish)
    app.register_error_handler(PatchError, _patch_error)
    app.register_error_handler(BadQueryError, lambda e: _error(str(e), 400))
    app.register_error_handler(MissingObjectError, lambda _: _error(NOT_FOUND_MESSAGE, 404))
    app.register_error_handler(HTTPException, lambda e: _error(e.description or "", e.code or 500))
    app.register_error_handler(Exception, _unexpected)
    app.register_blueprint(api)
    app.register_blueprint(subscriptions.api)  # /webhook/
    app.register_blueprint(activities.api)  # /activity/status_change/opportunity/
    return app


def _backend() -> Backend:
    return cast(Backend, current_app.extensions["fakeclose"])


def _gatekeeper() -> Response | None:
    backend, path = _backend(), request.path.removeprefix(API_PREFIX)
    body = request.get_json(silent=True) if request.data else None
    headers = {name.lower(): value for name, value in request.headers.items()}
    backend.traffic.record(
        RecordedRequest(request.method, path, dict(request.args.items()), body, headers)
    )
    delay = backend.traffic.take_delay(request.method, path)
    if delay is not None and delay.after_serving:
        g.late_delay = delay
    elif delay is not None:
        delay.hold(backend.stopping)
    auth = request.authorization
    key = auth.username if auth is not None and auth.type == "basic" else None
    if key not in backend.api_keys or (auth is not None and auth.password):
        return _error("Unauthorized", 401)
    g.api_key_id = backend.api_keys[str(key)]
    fault = backend.traffic.take_fault(request.method, path)
    if fault is not None and fault.after_serving:
        g.late_fault = fault
    elif fault is not None:
        return _fault_response(fault)
    return _count_rate(backend, g.api_key_id)


def _fault_response(fault: Fault) -> Response:
    response = jsonify(fault.body if fault.body is not None else {"error": "Injected fault"})
    response.status_code = fault.status
    response.headers.update(fault.headers)
    return response


def _count_rate(backend: Backend, api_key_id: str) -> Response | None:
    state = backend.traffic.rate_limiter.take(api_key_id, group_of(request.method))
    g.rate_limit = state
    if state.allowed:
        return None
    body = {
        "error": {
            "rate_reset": round(state.reset_sec, 3),
            "message": f"API call count exceeded for this {state.limit} requests window",
        }
    }
    response = _error_body(body, 429)
    response.headers["retry-after"] = state.retry_after()
    return response


def _finish(response: Response) -> Response:
    late_fault, late_delay = g.get("late_fault"), g.get("late_delay")
    if late_fault is not None:
        response = _fault_response(late_fault)  # served, but the answer is lost
    if late_delay is not None:
        late_delay.hold(_backend().stopping)
    _backend().traffic.answered(request.method, response.status_code)
    state = g.get("rate_limit")
    if state is not None:
        response.headers["ratelimit"] = state.header()
    # werkzeug upper-cases reason phrases ("400 BAD REQUEST"); real servers send RFC ones.
    phrase = _PHRASES.get(response.status_code)
    if phrase:
        response.status = f"{response.status_code} {phrase}"
    return response


def _error(message: str, status: int) -> Response:
    return _error_body({"error": message}, status)


def _error_body(body: Mapping[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _patch_error(error: PatchError) -> Response:
    return _error_body({"errors": [], "field-errors": error.field_errors}, 400)


def _unexpected(error: Exception) -> Response:
    # The server boundary: log it for whoever runs the fake, answer as Close would.
    log.exception("fakeclose_request_failed", extra={"path": request.path})
    return _error("Internal server error", 500)


def _tz_offset_hours() -> float | None:
    raw = request.headers.get("x-tz-offset")
    try:
        return None if raw is None else float(raw)
    except ValueError:
        raise BadQueryError(f"x-tz-offset must be a number of hours, got {raw!r}") from None


def _actor() -> Actor:
    return Actor(
        user_id=DEALKEEPER_USER_ID,
        api_key_id=g.api_key_id,
        request_id=new_id("req"),
        request_method=request.method,
        request_path=request.path,
        tz_offset_hours=_tz_offset_hours(),
    )


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadQueryError("the request body must be a JSON object")
    return body


@api.get("/me/")
def me() -> Response:
    first, last, email = USERS[DEALKEEPER_USER_ID]
    organizations = [{"id": ORGANIZATION_ID, "name": ORGANIZATION_NAME}]
    return jsonify(
        id=DEALKEEPER_USER_ID,
        email=email,
        first_name=first,
        last_name=last,
        organizations=organizations,
        memberships=[_membership(_backend())],
    )


def _membership(backend: Backend) -> dict[str, Any]:
    """The user's membership as Close's /me/ example shows it: `role_id` is one of the
    predefined roles (`admin`, `user`, ...) or a custom `role_` id (Memberships API)."""
    predefined = "admin" if backend.admin else "user"
    return {
        "id": "memb_fake",
        "organization_id": ORGANIZATION_ID,
        "user_id": DEALKEEPER_USER_ID,
        "role_id": backend.membership_role.get("role_id", predefined),
        "permissions_granted": [],
    }


@api.get("/role/<role_id>/")
def role(role_id: str) -> Response:
    found = _backend().roles.get(role_id)
    if found is None:
        return _error("Empty query: Role matching query does not exist.", 404)
    return jsonify(found)


@api.get("/status/opportunity/")
def statuses() -> Response:
    store = _backend().store
    with store.lock:
        return jsonify(paginate(list(store.statuses.values()), request.args))


@api.get("/pipeline/")
def pipelines() -> Response:
    store = _backend().store
    with store.lock:
        views = [
            {
                "id": p["id"],
                "name": p["name"],
                "organization_id": ORGANIZATION_ID,
                "statuses": [
                    {k: store.statuses[s][k] for k in ("id", "label", "type")}
                    for s in p["status_ids"]
                ],
                **{k: p[k] for k in ("created_by", "updated_by", "date_created", "date_updated")},
            }
            for p in store.pipelines.values()
        ]
    return jsonify(paginate(views, request.args))


@api.get("/custom_field_schema/opportunity/")
def custom_field_schema() -> Response:
    store = _backend().store
    with store.lock:
        return jsonify(fields=list(store.custom_fields.values()))


@api.get("/custom_field/opportunity/")
def custom_fields() -> Response:
    store = _backend().store
    with store.lock:
        return jsonify(paginate(list(store.custom_fields.values()), request.args))


@api.get("/opportunity/")
def opportunities() -> Response:
    args, store, listing = request.args, _backend().store, _backend().listing
    tz = offset_zone(_tz_offset_hours())
    dates = ("date_created", "date_updated", "date_won")
    filters = build_filters(args, exact=OPPORTUNITY_FILTERS, dates=dates, allow_in=True, tz=tz)
    with store.lock:
        found = [o for o in store.opportunities.values() if all(f(o) for f in filters)]
    page = paginate(sort_items(found, args.get("_order_by")), args, cap=listing.page_cap)
    fields, custom = args.get("_fields"), listing.custom_by_fields
    page["data"] = [only_fields(o, fields, custom_by_fields=custom) for o in page["data"]]
    return jsonify({**page, **list_aggregates(found)})


@api.post("/opportunity/")
def create_opportunity() -> Response:
    store = _backend().store
    event = store.create(without_keys(_json_body(), store.ignored_writes), _actor())
    return jsonify(event["data"])


@api.get("/opportunity/<opportunity_id>/")
def get_opportunity(opportunity_id: str) -> Response:
    found = _backend().store.opportunity(opportunity_id)
    return jsonify(only_fields(found, request.args.get("_fields")))


@api.put("/opportunity/<opportunity_id>/")
def update_opportunity(opportunity_id: str) -> Response:
    store = _backend().store
    body = without_keys(_json_body(), store.ignored_writes)
    after, _ = store.update(opportunity_id, body, _actor())
    return jsonify(after)


@api.delete("/opportunity/<opportunity_id>/")
def delete_opportunity(opportunity_id: str) -> Response:
    _backend().store.delete(opportunity_id, _actor())
    return jsonify({})


@api.get("/event/")
def events() -> Response:
    backend = _backend()
    with backend.store.lock:
        page = list_events(backend.store.events, request.args)
    page["data"] = [_as_seen(e, backend) for e in page["data"]]
    return jsonify(page)


@api.get("/event/<event_id>/")
def event(event_id: str) -> Response:
    store = _backend().store
    with store.lock:
        found = next((e for e in store.events if e["id"] == event_id), None)
    if found is None:
        return _error("Empty query: Event matching query does not exist.", 404)
    return jsonify(_as_seen(found, _backend()))


def _as_seen(event: Mapping[str, Any], backend: Backend) -> dict[str, Any]:
    return as_seen_by(event, admin=backend.admin, now=backend.store.now())
