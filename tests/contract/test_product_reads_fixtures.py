"""dealkeeper reads Close's own JSON (tests/contract/fixtures/) into what it expects.

The pure readers are called on the fixtures directly; error answers are served by the fake
Close byte for byte as the fixture holds them, so the client reads them through its real
transport, headers included.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.adapters.metadata import status_from_close
from service.adapters.queue import make_queue
from service.adapters.subscriptions import for_opportunities, for_url, same_events, without_secret
from service.commands.ops import describe_subscription
from service.config.errors import (
    CloseClientError,
    CloseNotFoundError,
    CloseRateLimitedError,
)
from service.config.settings import Settings
from service.core.events import event_from_delivery, event_from_dict
from service.core.retry import RateLimitInfo, parse_rate_limit, rate_limit_wait_sec
from service.core.rules import load_rules, make_plan
from service.intake.app import create_app
from service.processing.sweeps.paging import Cursor, advance
from tests.conftest import RULES_DIR
from tests.contract.conftest import FIXTURES

Fixture = Callable[[str], Any]

# Rules that read what each fixture carries: a status change (previous_data and data), and
# value and status_type of a deal as the API returns it.
RULES = """
timezone: America/New_York
rules:
  - name: note-the-win
    trigger: opportunity.updated
    if:
      - status_type: {changed_from: active, changed_to: won}
      - value: {gte: 100000}
    then:
      - set: {note: "Won on {{ today }}"}
  - name: big-open-deals-get-confidence
    trigger: opportunity.created
    if:
      - status_type: active
      - value: {gte: 20000}
      - confidence: {lt: 60}
    then:
      - set: {confidence: 60}
"""


def test_a_webhook_delivery_becomes_the_event_close_describes(fixture: Fixture) -> None:
    event = event_from_delivery(fixture("webhook-opportunity-won.json"))

    assert (event.name, event.id) == ("opportunity.updated", "ev_2sYKRjcrA79yKxi3S4Crd7")
    assert event.object_id == "oppo_7H4sjNso7FyBFaeR3RXi5PMJbilfo0c6UPCxsJtEhCO"
    # Close writes the event's times without an offset: they are UTC.
    assert event.date_created == datetime(2019, 1, 15, 12, 48, 23, 395000, tzinfo=UTC)
    assert event.date_updated == event.date_created
    assert event.changed_fields == (
        "confidence",
        "date_updated",
        "status_id",
        "status_label",
        "status_type",
    )
    assert event.previous_data["status_type"] == "active"
    assert (event.state["status_type"], event.state["value"]) == ("won", 100000)
    assert event.subscription_id == "whsub_8AmjKCZYT3zI8eZoi4HhFC"
    assert event.organization_id == "orga_XbVPx5fFbKlYTz9PW5Ih1XDhViV10YihIaEgMEb6fVW"
    assert event.user_id == "user_N6KhMpzHRCYQHdn4gRNIFNN5JExnsrprKA6ekxM63XA"
    assert (event.lead_id, event.request_id) == (
        "lead_zwqYhEFwzPyfCErS8uQ77is2wFLvr9BgVi6cTfbFM68",
        "req_4S2L8JTBAA1OUS74SVmfbN",
    )
    # Close's example has no api_key_id key at all: read as "not made with an API key".
    assert event.api_key_id is None
    assert not event.payload_missing


def test_the_rules_judge_the_delivered_status_change(fixture: Fixture) -> None:
    event = event_from_delivery(fixture("webhook-opportunity-won.json"))

    plan = make_plan(load_rules(RULES, "contract.yaml"), event, metadata=None)

    assert plan.fired == ("note-the-win",)
    # 12:48 UTC on 15 January is 07:48 in New York, at UTC-5 (no daylight saving then).
    assert plan.update == {"note": "Won on 2019-01-15"}
    assert plan.tz_offset_hours == -5.0


def test_an_opportunity_as_the_api_returns_it_is_judged_by_its_fields(fixture: Fixture) -> None:
    opportunity = fixture("opportunity.json")
    # An event's `data` is the object "as if you fetched it via API" (Close's Events page).
    event = event_from_dict(
        {
            "id": "ev_contract",
            "object_type": "opportunity",
            "action": "created",
            "object_id": opportunity["id"],
            "date_created": "2026-06-19T11:04:54.421000",
            "data": opportunity,
        }
    )

    plan = make_plan(load_rules(RULES, "contract.yaml"), event, metadata=None)

    assert plan.fired == ("big-open-deals-get-confidence",)  # 25000 cents, active, 50 %
    assert plan.update == {"confidence": 60}


def test_a_list_page_pages_by_the_deals_creation_times(fixture: Fixture) -> None:
    deals = fixture("opportunity-list.json")["data"]

    fresh, cursor = advance(Cursor(), items=deals)

    assert [d["id"] for d in fresh] == [d["id"] for d in deals]
    # The last deal's date_created (`...T11:04:54.421000+00:00`), to the second.
    assert cursor.second == "2026-06-19T11:04:54+00:00"


def test_the_statuses_of_a_pipeline_are_read_with_their_type(fixture: Fixture) -> None:
    pipeline = fixture("pipeline-list.json")["data"][0]

    statuses = [status_from_close(raw) for raw in pipeline["statuses"]]

    assert [(s.label, s.type) for s in statuses] == [
        ("Demo Completed", "active"),
        ("Proposal Sent", "active"),
        ("Contract Sent", "active"),
        ("Won", "won"),
        ("Lost", "lost"),
    ]
    assert statuses[3].id == "stat_q7LrpFgPlu8NY0mnLMKRdq9g9O7KQxdzbTxs9Dw2zN3"


def test_the_ratelimit_header_of_an_ordinary_answer(fixture: Fixture) -> None:
    headers = fixture("ratelimit-header.json")

    assert parse_rate_limit(headers) == RateLimitInfo(limit=100, remaining=50, reset_sec=5.0)


def test_a_429_is_read_from_its_headers(fixture: Fixture) -> None:
    headers, body = fixture("error-429.headers.json"), fixture("error-429.json")

    assert parse_rate_limit(headers) == RateLimitInfo(limit=100, remaining=0, reset_sec=1.0)
    assert rate_limit_wait_sec(headers, body) == 1.0


def _served(fake_close: FakeClose, status: int, body: Any, headers: Any = None) -> None:
    fake_close.fail_next(1, status=status, method="GET", body=body, headers=headers)


def test_a_400_carries_close_s_field_errors(
    fake_close: FakeClose, client: CloseClient, fixture: Fixture
) -> None:
    _served(fake_close, 400, fixture("error-400-field-errors.json"))

    with pytest.raises(CloseClientError) as raised:
        client.get_opportunity("oppo_contract")

    assert raised.value.status == 400
    assert raised.value.field_errors == {"lead": "This field is required."}
    assert raised.value.detail == "lead: This field is required."


def test_a_401_says_unauthorized(
    fake_close: FakeClose, client: CloseClient, fixture: Fixture
) -> None:
    _served(fake_close, 401, fixture("error-401.json"))

    with pytest.raises(CloseClientError) as raised:
        client.get_opportunity("oppo_contract")

    assert (raised.value.status, raised.value.detail) == (401, "Unauthorized")
    assert not isinstance(raised.value, CloseNotFoundError)


def test_a_404_is_a_deal_that_is_gone(
    fake_close: FakeClose, client: CloseClient, fixture: Fixture
) -> None:
    _served(fake_close, 404, fixture("error-404.json"))

    with pytest.raises(CloseNotFoundError) as raised:
        client.get_opportunity("oppo_contract")

    assert raised.value.detail == "Empty query: Opportunity matching query does not exist."


def test_a_429_asks_for_the_wait_its_headers_name(
    fake_close: FakeClose, client: CloseClient, fixture: Fixture
) -> None:
    headers = fixture("error-429.headers.json")
    _served(fake_close, 429, fixture("error-429.json"), headers)

    with pytest.raises(CloseRateLimitedError) as raised:
        client.get_opportunity("oppo_contract")

    assert fake_close.answers[("GET", 429)] == 1
    assert raised.value.retry_after_sec == 1.0


# The signature_key of the Webhooks page's own verification example.
PAGE_SIGNATURE_KEY = "058bfb6a3d8cfdc4da7c3be5901b16ae11da982b46a25fb2cd7016e97a140a1c"


@pytest.fixture
def intake(redis_url: str) -> Iterator[FlaskClient]:
    """dealkeeper's web app (real Redis), keyed with the page's signature key."""
    settings = Settings(
        webhook_secrets=(bytes.fromhex(PAGE_SIGNATURE_KEY),),
        redis_url=redis_url,
        rules_path=str(RULES_DIR),
    )
    app = create_app(settings, clock=lambda: float(DELIVERED_AT))
    yield app.test_client()
    app.extensions["dealkeeper"].connection.close()


DELIVERED_AT = 1_765_000_000


def test_intake_queues_close_s_delivery_as_it_is(
    intake: FlaskClient, redis_client: redis.Redis
) -> None:
    body = (FIXTURES / "webhook-opportunity-won.json").read_bytes()  # the bytes, untouched
    stamp = str(DELIVERED_AT)
    # The Webhooks page: HMAC-SHA256 keyed with the hex-decoded key over timestamp + body.
    digest = hmac.new(bytes.fromhex(PAGE_SIGNATURE_KEY), stamp.encode() + body, hashlib.sha256)
    headers = {
        "close-sig-hash": digest.hexdigest(),
        "close-sig-timestamp": stamp,
        "content-type": "application/json",
    }

    answer = intake.post("/webhooks/close", data=body, headers=headers)

    assert answer.status_code == 202
    assert answer.get_json()["status"] == "queued"
    (job,) = make_queue(redis_client).jobs
    assert job.args[0]["id"] == "ev_2sYKRjcrA79yKxi3S4Crd7"
    assert job.args[0]["object_id"] == "oppo_7H4sjNso7FyBFaeR3RXi5PMJbilfo0c6UPCxsJtEhCO"


def test_close_s_subscriptions_are_found_and_described(fixture: Fixture) -> None:
    listed = fixture("webhook-subscription-list.json")["data"]

    (ours,) = for_opportunities(listed)
    text = describe_subscription(ours)

    assert ours["id"] == "whsub_5WCMgxGZbD4YV9F60JVZhu"
    assert for_url(listed, "https://httpbin.org/post/") == [ours]  # a trailing slash aside
    assert "latest error  Exception name: HTTPError, Status code: 503" in text
    assert "counters      first_fail=1 first_success=1 retry_success=1" in text
    (failure,) = ours["history"]["errors"]
    assert f"{failure['event_id']}  503  HTTPError (attempt 1)" in text


def test_a_new_subscription_s_key_is_kept_out_of_sight(fixture: Fixture) -> None:
    created = fixture("webhook-subscription.json")

    shown = without_secret(created)

    assert "signature_key" not in shown
    assert created["signature_key"] not in repr(shown)
    # Close echoes each event with `extra_filter: null`: the same as asking without one.
    assert same_events(created["events"], [{"object_type": "opportunity", "action": "deleted"}])
