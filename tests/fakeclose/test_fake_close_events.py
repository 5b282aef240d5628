"""FakeClose's events: their shape, the event log with filters and cursors, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from fakeclose import Delivery, FakeClose, sign_webhook
from fakeclose.webhooks import DELIVERY_TIMEOUT_SEC
from tests.fakeclose.conftest import Api, WebhookReceiver

SIGNATURE_KEY = "058bfb6a" * 8  # 32 bytes, hex, like Close's signature_key


def test_fake_update_emits_an_event_as_close_does(fake: FakeClose, api: Api) -> None:
    """changed_fields (sorted, with date_updated), previous_data, data, key and request ids."""
    fake.now = datetime(2026, 11, 28, 3, 30, 0, 123000, tzinfo=UTC)
    oppo = fake.add_opportunity(confidence=70)
    api.put(f"opportunity/{oppo['id']}/", {"status_id": fake.status_id("Won"), "confidence": 100})
    [event] = fake.events
    changed = ["confidence", "date_updated", "date_won", "status_id", "status_label", "status_type"]
    previous = {k: oppo[k] for k in changed}
    assert (
        ("opportunity", "updated", oppo["id"], oppo["lead_id"], "orga_fake"),
        ("user_dealkeeper", "api_testkey", True),
        ("2026-11-28T03:30:00.123000", "2026-11-28T03:30:00.123000"),
        (changed, previous, fake.opportunity(oppo["id"])),
        {"request_method": "PUT", "request_path": f"/api/v1/opportunity/{oppo['id']}/"},
    ) == (
        tuple(
            event[k] for k in ("object_type", "action", "object_id", "lead_id", "organization_id")
        ),
        (event["user_id"], event["api_key_id"], event["request_id"].startswith("req_")),
        (event["date_created"], event["date_updated"]),
        (event["changed_fields"], event["previous_data"], event["data"]),
        event["meta"],
    )


def test_fake_custom_field_changes_appear_as_custom_keys(fake: FakeClose, api: Api) -> None:
    """A custom field change is listed as `custom.cf_X`, its old value null when it was unset."""
    field = fake.add_custom_field("Source")
    oppo = fake.add_opportunity()
    api.put(f"opportunity/{oppo['id']}/", {f"custom.{field}": "web"})
    [event] = fake.events
    assert ([f"custom.{field}", "date_updated"], None) == (
        event["changed_fields"],
        event["previous_data"][f"custom.{field}"],
    )


def test_fake_create_and_delete_events_carry_the_object(fake: FakeClose, api: Api) -> None:
    """created: data, no previous_data; deleted: no data, previous_data is the whole object."""
    created = api.request("POST", "opportunity/", json={"value": 5}).json()
    api.request("DELETE", f"opportunity/{created['id']}/")
    create, delete = fake.events
    assert (
        ("created", [], {}, created),
        ("deleted", [], created, None),
    ) == (
        (create["action"], create["changed_fields"], create["previous_data"], create["data"]),
        (delete["action"], delete["changed_fields"], delete["previous_data"], delete["data"]),
    )


def test_fake_user_edits_emit_events_without_an_api_key(fake: FakeClose) -> None:
    """A person's edit in the UI carries their user id and api_key_id None."""
    oppo = fake.add_opportunity()
    event = fake.user_update(oppo["id"], {"value": 900})
    created = fake.user_create({"value": 1}, user_id="user_other")
    assert (("user_human", None, ["date_updated", "value"]), ("user_other", None)) == (
        (event["user_id"], event["api_key_id"], event["changed_fields"]) if event else None,
        (created["user_id"], created["api_key_id"]),
    )


def test_fake_user_update_that_changes_nothing_emits_nothing(fake: FakeClose) -> None:
    """No change, no event."""
    oppo = fake.add_opportunity(value=5)
    assert (None, []) == (fake.user_update(oppo["id"], {"value": 5}), fake.events)


def test_fake_event_log_filters_and_lists_newest_first(fake: FakeClose, api: Api) -> None:
    """object_id, action and date_updated bounds filter; the newest event comes first."""
    first, second = fake.add_opportunity(), fake.add_opportunity()
    fake.now = datetime(2026, 11, 1, tzinfo=UTC)
    fake.user_update(first["id"], {"value": 1})
    fake.now = datetime(2026, 11, 2, tzinfo=UTC)
    fake.user_update(first["id"], {"value": 2})
    fake.user_update(second["id"], {"value": 3})
    fake.user_delete(second["id"])
    by_object = api.get("event/", object_type="opportunity", object_id=first["id"]).json()["data"]
    deleted = api.get("event/", action="deleted").json()["data"]
    recent = api.get("event/", date_updated__gte="2026-11-02T00:00:00").json()["data"]
    assert ([2, 1], [second["id"]], 3) == (
        [e["data"]["value"] for e in by_object],
        [e["object_id"] for e in deleted],
        len(recent),
    )


def test_fake_event_log_pages_with_cursors(fake: FakeClose, api: Api) -> None:
    """Pages of 50 follow cursor_next to older events; cursor_previous leads back to newer."""
    oppo = fake.add_opportunity()
    for value in range(120):
        fake.user_update(oppo["id"], {"value": value + 1})
    pages, params = [], {"object_id": oppo["id"]}
    cursor: str | None = ""
    while cursor is not None:
        page = api.get("event/", **params, _cursor=cursor).json()
        pages.append(page)
        cursor = page["cursor_next"]
    back = api.get("event/", **params, _cursor=pages[-1]["cursor_previous"]).json()
    values = [[e["data"]["value"] for e in p["data"]] for p in pages]
    assert (
        [list(range(120, 70, -1)), list(range(70, 20, -1)), list(range(20, 0, -1))],
        None,
        values[1],
    ) == (values, pages[0]["cursor_previous"], [e["data"]["value"] for e in back["data"]])


def test_fake_event_log_caps_limit_and_rejects_foreign_cursors(fake: FakeClose, api: Api) -> None:
    """_limit above 50 is capped at 50; a cursor this API did not issue is a 400."""
    oppo = fake.add_opportunity()
    for value in range(60):
        fake.user_update(oppo["id"], {"value": value + 1})
    assert (50, 400) == (
        len(api.get("event/", _limit=100).json()["data"]),
        api.get("event/", _cursor="garbage!").status_code,
    )


def test_fake_event_by_id(fake: FakeClose, api: Api) -> None:
    """GET event/<id>/ returns one event; an unknown id is 404."""
    event = fake.user_update(fake.add_opportunity()["id"], {"value": 1})
    assert event is not None
    assert (event, 404) == (
        api.get(f"event/{event['id']}/").json(),
        api.get("event/ev_nope/").status_code,
    )


def test_fake_hides_old_event_data_from_a_non_admin_key() -> None:
    """Close's Events page: a non-admin key gets data and previous_data only for events less
    than an hour old (by the fake's clock); older ones come with both null, in the list and
    by id. An admin key (the default) always gets them."""
    with FakeClose(admin=False) as fake:
        api = Api(fake)
        oppo = fake.add_opportunity(confidence=60)
        fake.now = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
        old = fake.user_update(oppo["id"], {"confidence": 70})
        fake.now = datetime(2026, 11, 28, 4, 29, 59, tzinfo=UTC)
        recent = fake.user_update(oppo["id"], {"confidence": 80})
        fake.now = datetime(2026, 11, 28, 4, 30, tzinfo=UTC)  # `old` is now an hour old
        listed = {e["id"]: e for e in api.get("event/").json()["data"]}
        assert old is not None and recent is not None
        one = api.get(f"event/{old['id']}/").json()
        api.session.close()
    assert (
        (None, None, old["changed_fields"]),
        (None, None),
        (recent["data"], recent["previous_data"]),
        (old["data"], old["previous_data"]),
    ) == (
        (listed[old["id"]]["data"], listed[old["id"]]["previous_data"], one["changed_fields"]),
        (one["data"], one["previous_data"]),
        (listed[recent["id"]]["data"], listed[recent["id"]]["previous_data"]),
        (fake.events[0]["data"], fake.events[0]["previous_data"]),
    )


def test_fake_admin_key_sees_old_event_data(fake: FakeClose, api: Api) -> None:
    """The default key is an admin's: a month-old event still carries its data."""
    fake.now = datetime(2026, 11, 1, tzinfo=UTC)
    event = fake.user_update(fake.add_opportunity()["id"], {"value": 1})
    fake.now = datetime(2026, 11, 28, tzinfo=UTC)
    assert event is not None
    assert event["data"] == api.get(f"event/{event['id']}/").json()["data"]


def test_sign_webhook_is_hmac_sha256_of_timestamp_and_body() -> None:
    """Key: the hex-decoded signature key; message: the timestamp string, then the raw body."""
    body = b'{"event": {}}'
    digest = hmac.new(
        bytes.fromhex(SIGNATURE_KEY), b"1544271440" + body, hashlib.sha256
    ).hexdigest()
    expected = {"close-sig-hash": digest, "close-sig-timestamp": "1544271440"}
    assert expected == sign_webhook(body, SIGNATURE_KEY, 1544271440)


def _verify(headers: dict[str, str], body: bytes) -> bool:
    message = headers["close-sig-timestamp"].encode() + body
    digest = hmac.new(bytes.fromhex(SIGNATURE_KEY), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest, headers["close-sig-hash"])


def test_fake_delivers_signed_webhooks_in_order(
    fake: FakeClose, api: Api, receiver: WebhookReceiver
) -> None:
    """Each event is POSTed once, in order, as {subscription_id, event}, correctly signed."""
    fake.deliver_webhooks_to(receiver.url, signature_key_hex=SIGNATURE_KEY)
    oppo = fake.add_opportunity()
    api.put(f"opportunity/{oppo['id']}/", {"confidence": 10})
    fake.user_update(oppo["id"], {"confidence": 20})
    fake.wait_for_deliveries(timeout=5.0)
    bodies = [json.loads(body) for _, body in receiver.posts]
    ids = [e["id"] for e in fake.events]
    assert (
        [True, True],
        [("whsub_fake", ids[0]), ("whsub_fake", ids[1])],
        [Delivery(ids[0], 1, 200, True), Delivery(ids[1], 1, 200, True)],
    ) == (
        [_verify(headers, body) for headers, body in receiver.posts],
        [(b["subscription_id"], b["event"]["id"]) for b in bodies],
        fake.deliveries,
    )


def test_fake_retries_a_webhook_answered_non_2xx(
    fake: FakeClose, receiver: WebhookReceiver
) -> None:
    """A 500 from the receiver is retried, and the retry is signed too."""
    receiver.statuses = [500]
    fake.deliver_webhooks_to(receiver.url, signature_key_hex=SIGNATURE_KEY, retry_delay_sec=0.01)
    event = fake.user_update(fake.add_opportunity()["id"], {"value": 1})
    fake.wait_for_deliveries(timeout=5.0)
    assert event is not None
    assert ([Delivery(event["id"], 2, 200, True)], [True, True]) == (
        fake.deliveries,
        [_verify(headers, body) for headers, body in receiver.posts],
    )


def test_fake_gives_up_a_webhook_after_max_attempts(
    fake: FakeClose, receiver: WebhookReceiver
) -> None:
    """A receiver that keeps failing gets max_attempts tries, then the delivery is dropped."""
    receiver.statuses = [503] * 10
    fake.deliver_webhooks_to(
        receiver.url, signature_key_hex=SIGNATURE_KEY, max_attempts=3, retry_delay_sec=0.01
    )
    event = fake.user_update(fake.add_opportunity()["id"], {"value": 1})
    fake.wait_for_deliveries(timeout=5.0)
    assert event is not None
    assert ([Delivery(event["id"], 3, 503, False)], 3) == (fake.deliveries, len(receiver.posts))


def test_fake_wait_for_deliveries_raises_at_its_deadline(
    fake: FakeClose, receiver: WebhookReceiver
) -> None:
    """While deliveries are still being retried, waiting gives up with TimeoutError."""
    receiver.statuses = [500] * 10
    fake.deliver_webhooks_to(
        receiver.url, signature_key_hex=SIGNATURE_KEY, retry_delay_sec=DELIVERY_TIMEOUT_SEC
    )
    fake.user_update(fake.add_opportunity()["id"], {"value": 1})
    with pytest.raises(TimeoutError, match="1 webhook deliveries still pending"):
        fake.wait_for_deliveries(timeout=0.1)
