"""`dealkeeper subscribe` and `dealkeeper subscription` against the fake Close and a real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from fakeclose import FakeClose
from service.adapters.ownwrites import KNOWN_KEY
from service.commands.cli import cli

URL = "https://dealkeeper.example.com/webhooks/close"
OPPORTUNITY_EVENTS = [
    ("opportunity", "created"),
    ("opportunity", "updated"),
    ("opportunity", "deleted"),
]


@pytest.fixture
def run(fake_close: FakeClose, redis_url: str) -> Any:
    """Invoke dealkeeper with the fake Close's URL and key and the test Redis."""
    env = {
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake_close.url,
        "REDIS_URL": redis_url,
        "CLOSE_WEBHOOK_SECRET": None,
        "REDIS_SSL_CERT_REQS": None,
    }

    def invoke(*args: str, **overrides: str | None) -> Result:
        return CliRunner().invoke(cli, list(args), env={**env, **overrides})

    return invoke


def subscriptions(fake: FakeClose) -> list[dict[str, Any]]:
    return fake.webhook_subscriptions.all()


def test_subscribe_creates_and_prints_the_key_once(run: Any, fake_close: FakeClose) -> None:
    """The first run creates one subscription for opportunity events and prints its key with
    how to store it."""
    result = run("subscribe", "--url", URL)

    [made] = subscriptions(fake_close)
    key = fake_close.webhook_subscriptions.get(made["id"])["signature_key"]
    assert 0 == result.exit_code, result.output
    assert (URL, OPPORTUNITY_EVENTS) == (
        made["url"],
        [(e["object_type"], e["action"]) for e in made["events"]],
    )
    assert 1 == result.output.count(key)
    assert f"created webhook subscription {made['id']} for {URL}" in result.output
    assert "CLOSE_WEBHOOK_SECRET" in result.output


def test_subscribe_again_changes_nothing(run: Any, fake_close: FakeClose) -> None:
    """A second run finds the subscription by URL: no second POST, no key shown again."""
    run("subscribe", "--url", URL)
    key = fake_close.webhook_subscriptions.get(subscriptions(fake_close)[0]["id"])["signature_key"]

    again = run("subscribe", "--url", URL)

    assert 0 == again.exit_code, again.output
    assert 1 == len(subscriptions(fake_close))
    assert 1 == len(fake_close.requests_matching("POST", "webhook/"))
    assert key not in again.output
    assert "keep CLOSE_WEBHOOK_SECRET as it is" in again.output


def test_subscribe_excludes_own_changes_with_the_learned_key_id(
    run: Any, fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """With the key id learned, every event carries Close's not-equals filter on api_key_id."""
    redis_client.sadd(KNOWN_KEY, "api_ours")

    result = run("subscribe", "--url", URL, "--exclude-own-changes")

    wanted = {
        "type": "field_accessor",
        "field": "api_key_id",
        "filter": {"type": "not_equals", "value": "api_ours"},
    }
    assert 0 == result.exit_code, result.output
    assert [wanted] * 3 == [e["extra_filter"] for e in subscriptions(fake_close)[0]["events"]]


def test_subscribe_adds_the_filter_to_an_existing_subscription(
    run: Any, fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """Re-running with --exclude-own-changes updates the events in place (one PUT)."""
    run("subscribe", "--url", URL)
    redis_client.sadd(KNOWN_KEY, "api_ours")

    result = run("subscribe", "--url", URL, "--exclude-own-changes")

    assert 0 == result.exit_code, result.output
    assert "updated webhook subscription" in result.output
    assert 1 == len(fake_close.requests_matching("PUT", "webhook/"))
    assert all(e["extra_filter"] for e in subscriptions(fake_close)[0]["events"])


def test_subscribe_without_a_learned_key_id_skips_the_filter(
    run: Any, fake_close: FakeClose
) -> None:
    """Before dealkeeper knows its key's id, it says so and subscribes without a filter."""
    result = run("subscribe", "--url", URL, "--exclude-own-changes")

    assert 0 == result.exit_code, result.output
    assert "has not learned its own API key's id yet" in result.output
    assert [None] * 3 == [e["extra_filter"] for e in subscriptions(fake_close)[0]["events"]]


def test_subscribe_needs_an_api_key(run: Any) -> None:
    """Without CLOSE_API_KEY it stops with what to set, exit 1."""
    result = run("subscribe", "--url", URL, CLOSE_API_KEY=None)

    assert 1 == result.exit_code
    assert "CLOSE_API_KEY is not set" in result.output


def test_subscribe_reports_close_refusing_the_key(run: Any) -> None:
    """A key Close refuses gives Close's 401 as a one-line error, never the key."""
    result = run("subscribe", "--url", URL, CLOSE_API_KEY="wrong-key-123456")

    assert 1 == result.exit_code
    assert "401" in result.output
    assert "wrong-key-123456" not in result.output


def test_subscription_shows_status_and_health(run: Any, fake_close: FakeClose) -> None:
    """Close's delivery-health fields and recent failures are shown; the key never is."""
    run("subscribe", "--url", URL)
    [made] = subscriptions(fake_close)
    failure = {
        "attempt_number": 2,
        "datetime": "2026-11-30T02:00:00+00:00",
        "error": "HTTPError",
        "event_id": "ev_1",
        "response_status_code": 503,
    }
    fake_close.webhook_subscriptions.set_health(
        made["id"],
        counters={"first_fail": 3},
        latest_error="Exception name: HTTPError, Status code: 503",
        history={"errors": [failure], "successes": []},
    )

    result = run("subscription")

    key = fake_close.webhook_subscriptions.get(made["id"])["signature_key"]
    assert 0 == result.exit_code, result.output
    assert f"subscription {made['id']}" in result.output
    assert "status        active" in result.output
    assert "latest error  Exception name: HTTPError, Status code: 503" in result.output
    assert "counters      first_fail=3" in result.output
    assert "2026-11-30T02:00:00+00:00  ev_1  503  HTTPError (attempt 2)" in result.output
    assert key not in result.output


def test_subscription_json_leaves_out_the_key(run: Any, fake_close: FakeClose) -> None:
    """--json prints the subscriptions as Close describes them, minus signature_key."""
    run("subscribe", "--url", URL)

    result = run("subscription", "--json")

    [shown] = json.loads(result.output)
    assert (URL, "active") == (shown["url"], shown["status"])
    assert "signature_key" not in shown


def test_subscription_resume_reactivates_a_paused_one(run: Any, fake_close: FakeClose) -> None:
    """--resume PUTs status active and points at catch-up for what Close dropped."""
    run("subscribe", "--url", URL)
    [made] = subscriptions(fake_close)
    fake_close.webhook_subscriptions.set_health(made["id"], status="paused", pause_reason="failing")

    result = run("subscription", "--resume")

    assert 0 == result.exit_code, result.output
    assert "active" == subscriptions(fake_close)[0]["status"]
    assert [{"status": "active"}] == [r.json for r in fake_close.requests_matching("PUT")]
    assert "dealkeeper catch-up --since" in result.output


def test_subscription_resume_of_an_active_one_does_nothing(run: Any, fake_close: FakeClose) -> None:
    """An active subscription is left alone: no PUT."""
    run("subscribe", "--url", URL)

    result = run("subscription", "--resume")

    assert 0 == result.exit_code
    assert "nothing to resume" in result.output
    assert [] == fake_close.requests_matching("PUT")


def test_subscription_resume_asks_which_when_several(run: Any, fake_close: FakeClose) -> None:
    """Two opportunity subscriptions and no --url: nothing is resumed, exit 1."""
    run("subscribe", "--url", URL)
    run("subscribe", "--url", "https://other.example.com/webhooks/close")

    result = run("subscription", "--resume")

    assert 1 == result.exit_code
    assert "say which to resume with --url" in result.output
    assert [] == fake_close.requests_matching("PUT")


def test_subscription_without_any_says_how_to_make_one(run: Any) -> None:
    """No subscription yet: exit 1 with the subscribe command to run."""
    result = run("subscription")

    assert 1 == result.exit_code
    assert "dealkeeper subscribe --url https://<your host>/webhooks/close" in result.output
