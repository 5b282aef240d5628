"""FakeClose's webhook subscription endpoints answer as Close's do."""

from __future__ import annotations

import re
from typing import Any

from fakeclose import FakeClose
from tests.fakeclose.conftest import Api

EVENTS = [
    {"object_type": "opportunity", "action": "created"},
    {"object_type": "opportunity", "action": "updated"},
]


def create(api: Api, url: str = "https://example.test/webhooks/close") -> dict[str, Any]:
    answer = api.request("POST", "webhook/", json={"url": url, "events": EVENTS})
    assert 201 == answer.status_code, answer.text
    return dict(answer.json())


def test_fake_webhook_create_returns_the_signature_key(api: Api) -> None:
    """A created subscription is active, echoes its events with null filters, and carries a
    64-hex-digit signature_key and the delivery-health fields."""
    created = create(api)

    assert re.fullmatch(r"whsub_\w+", created["id"])
    assert re.fullmatch(r"[0-9a-f]{64}", created["signature_key"])
    assert ("active", True, None, {}, 0) == (
        created["status"],
        created["verify_ssl"],
        created["pause_reason"],
        created["counters"],
        created["recent_consecutive_fail_buckets_cnt"],
    )
    assert [{**e, "extra_filter": None} for e in EVENTS] == created["events"]


def test_fake_webhook_list_never_shows_signature_keys(api: Api) -> None:
    """GET /webhook/ pages through subscriptions without their keys, as Close's list does."""
    first, second = create(api, "https://a.test/hook"), create(api, "https://b.test/hook")

    page = api.get("webhook/", _limit=1).json()
    rest = api.get("webhook/", _skip=1, _limit=1).json()

    assert ([first["id"]], True) == ([s["id"] for s in page["data"]], page["has_more"])
    assert ([second["id"]], False) == ([s["id"] for s in rest["data"]], rest["has_more"])
    assert all("signature_key" not in s for s in page["data"] + rest["data"])


def test_fake_webhook_single_get_shows_the_key(api: Api) -> None:
    """GET /webhook/<id>/ answers the whole subscription, key included (Close's spec example)."""
    created = create(api)

    fetched = api.get(f"webhook/{created['id']}/").json()

    assert created["signature_key"] == fetched["signature_key"]


def test_fake_webhook_pause_and_resume_set_the_pause_reason(api: Api) -> None:
    """PUT status paused records pause_reason 'api'; PUT status active clears it."""
    created = create(api)
    path = f"webhook/{created['id']}/"

    paused = api.put(path, {"status": "paused"}).json()
    resumed = api.put(path, {"status": "active"}).json()

    assert ("paused", "api") == (paused["status"], paused["pause_reason"])
    assert ("active", None) == (resumed["status"], resumed["pause_reason"])


def test_fake_webhook_update_changes_only_what_is_sent(api: Api) -> None:
    """A PUT with events replaces the list and leaves the URL and key alone."""
    created = create(api)
    wanted = [{"object_type": "opportunity", "action": "deleted", "extra_filter": {"type": "x"}}]

    updated = api.put(f"webhook/{created['id']}/", {"events": wanted}).json()

    assert wanted == updated["events"]
    assert (created["url"], created["signature_key"]) == (updated["url"], updated["signature_key"])


def test_fake_webhook_refuses_unknown_fields_and_bad_status(api: Api) -> None:
    """Close's update schema forbids unknown properties; status is active or paused."""
    created = create(api)
    path = f"webhook/{created['id']}/"

    unknown = api.put(path, {"colour": "blue"})
    bad_status = api.put(path, {"status": "sleeping"})

    assert (400, {"error": "unknown fields: colour"}) == (unknown.status_code, unknown.json())
    assert 400 == bad_status.status_code


def test_fake_webhook_create_needs_url_and_events(api: Api) -> None:
    """A POST without events is refused with 400."""
    answer = api.request("POST", "webhook/", json={"url": "https://x.test/hook"})

    assert (400, {"error": "events: a non-empty list is required"}) == (
        answer.status_code,
        answer.json(),
    )


def test_fake_webhook_unknown_and_deleted_ids_are_404(api: Api) -> None:
    """DELETE answers {} and the subscription is gone afterwards."""
    created = create(api)
    path = f"webhook/{created['id']}/"

    deleted = api.request("DELETE", path)

    assert (200, {}) == (deleted.status_code, deleted.json())
    assert 404 == api.get(path).status_code
    assert 404 == api.put("webhook/whsub_nope/", {"status": "active"}).status_code


def test_fake_webhook_endpoints_need_the_api_key(fake: FakeClose) -> None:
    """Without a known key the endpoints answer 401, like the rest of the API."""
    stranger = Api(fake, key="unknown-key")

    assert 401 == stranger.get("webhook/").status_code


def test_fake_webhook_health_fields_can_be_set_for_tests(api: Api, fake: FakeClose) -> None:
    """Tests set what Close reports about deliveries; the API then shows it."""
    created = create(api)

    fake.webhook_subscriptions.set_health(
        created["id"], status="paused", pause_reason="failing", latest_error="HTTPError 503"
    )

    shown = api.get("webhook/").json()["data"][0]
    assert ("paused", "failing", "HTTPError 503") == (
        shown["status"],
        shown["pause_reason"],
        shown["latest_error"],
    )
