"""What nobody without the signature key can do to the intake: shut it, queue what Close
never sends, or make a refused delivery look like traffic."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue

from service.adapters.snapshot import collect_status
from service.adapters.stats import LAST_KEY, LAST_WEBHOOK_FIELD, STATS_KEY
from service.config.settings import Settings
from service.intake import signatures
from service.intake.budget import (
    DEFAULT_PER_CLIENT_PER_MIN,
    DEFAULT_TOTAL_PER_MIN,
    RejectionBudget,
)

KEY = bytes.fromhex("5a" * 32)
NOW = 1_800_000_000.0
RULES = "rules:\n  - name: full-confidence\n    then:\n      - set: {confidence: 100}\n"
LAST_WEBHOOK_METRIC = "dealkeeper_last_webhook_timestamp_seconds "
FLOOD = 3000  # past the whole process's budget (1,200 a minute) more than twice over


def envelope(number: int = 1, **event: Any) -> bytes:
    body = {
        "id": f"ev_{number}",
        "object_type": "opportunity",
        "object_id": f"oppo_{number}",
        "action": "updated",
        "date_created": "2026-11-28T03:30:00.000000",
        "date_updated": "2026-11-28T03:30:00.000000",
        "changed_fields": ["status_id"],
        "previous_data": {"status_id": "stat_a"},
        "data": {"id": f"oppo_{number}", "status_id": "stat_b"},
    }
    body.update(event)
    return json.dumps({"subscription_id": "whsub_1", "event": body}).encode()


def signed(body: bytes) -> dict[str, str]:
    return signatures.signed_headers(body, key=KEY, timestamp=int(NOW))


@pytest.fixture
def make_client(
    redis_url: str, tmp_path: Path, web_client_for: Callable[..., FlaskClient]
) -> Callable[..., FlaskClient]:
    (tmp_path / "rules.yaml").write_text(RULES)

    def make(**changes: Any) -> FlaskClient:
        settings = Settings(
            webhook_secrets=(KEY,), redis_url=redis_url, rules_path=str(tmp_path)
        ).with_changes(**changes)
        return web_client_for(settings, now=NOW)

    return make


@pytest.fixture
def client(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    return make_client()


def post(client: FlaskClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        "/webhooks/close", data=body, headers={**headers, "content-type": "application/json"}
    )


def refusals_counted(redis_client: redis.Redis) -> int:
    counts = redis_client.hgetall(STATS_KEY)
    return sum(int(v) for k, v in counts.items() if b"rejected_" in k)


@pytest.mark.parametrize(
    "forwarded",
    [lambda n: {"X-Forwarded-For": f"198.51.{n // 256}.{n % 256}"}, lambda n: {}],
    ids=["rotating-x-forwarded-for", "one-address"],
)
def test_intake_unsigned_flood_never_refuses_a_signed_delivery(
    client: FlaskClient, queue: Queue, forwarded: Callable[[int], dict[str, str]]
) -> None:
    """After 3,000 unsigned posts in one minute, each still answered 401, ten signed
    deliveries are all queued: the budget never turns a good signature away."""
    junk = envelope(0)
    refused = [post(client, junk, forwarded(n)).status_code for n in range(FLOOD)]

    answers = [post(client, envelope(n), signed(envelope(n))).status_code for n in range(1, 11)]

    assert {401} == set(refused)
    assert [202] * 10 == answers
    assert 10 == queue.count


def test_intake_refusals_past_the_budget_cost_no_log_line_or_counter(
    client: FlaskClient, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Past a client's share, refusals are still refused (401) but neither logged nor
    counted in Redis; one line says the muting began."""
    client.application.extensions["dealkeeper"].budget = RejectionBudget(per_client=3)

    with caplog.at_level(logging.WARNING, logger="dealkeeper.web"):
        answers = [post(client, envelope(), {}).status_code for _ in range(10)]

    messages = [r.getMessage() for r in caplog.records]
    assert [401] * 10 == answers
    assert 3 == refusals_counted(redis_client)
    assert (3, 1) == (
        messages.count("webhook_rejected"),
        messages.count("webhook_rejections_muted"),
    )


@pytest.mark.parametrize(
    ("proxies", "written"),
    [(0, DEFAULT_PER_CLIENT_PER_MIN), (1, DEFAULT_TOTAL_PER_MIN)],
    ids=["one-sender", "a-sender-per-forwarded-address"],
)
def test_intake_flood_costs_one_counter_per_refusal_within_the_budget_and_nothing_past_it(
    make_client: Callable[..., FlaskClient],
    redis_client: redis.Redis,
    proxies: int,
    written: int,
) -> None:
    """What docs/intake.md promises a flood costs Redis, counted by Redis itself: 3,000
    unsigned posts with rotating X-Forwarded-For write one HINCRBY of the rejected_401
    counter per refusal while the budget lasts (60 for one sender, 1,200 in all when each
    is believed to be another) and no other command or key; past it, nothing."""
    client = make_client(proxies=proxies)
    # The window frozen: on a slow machine the flood may take longer than a minute.
    client.application.extensions["dealkeeper"].budget = RejectionBudget(clock=lambda: 0.0)
    junk = envelope(0)
    redis_client.config_resetstat()

    answers = {
        post(client, junk, {"X-Forwarded-For": f"198.51.{n // 256}.{n % 256}"}).status_code
        for n in range(FLOOD)
    }

    calls = {
        name.removeprefix("cmdstat_"): stat["calls"]
        for name, stat in redis_client.info("commandstats").items()
    }
    assert {401} == answers
    assert {"hincrby": written} == {k: v for k, v in calls.items() if k != "config"}
    assert [STATS_KEY.encode()] == redis_client.keys()
    assert written == refusals_counted(redis_client)


@pytest.mark.parametrize(
    ("proxies", "hops", "recorded"),
    [
        (0, ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"], 1),
        (1, ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"], 4),
        (1, ["203.0.113.1, 198.51.100.9", "203.0.113.2, 198.51.100.9"], 1),
    ],
    ids=["no-proxy-ignores-the-header", "one-proxy-its-hop", "one-proxy-forged-hops-ignored"],
)
def test_intake_x_forwarded_for_is_trusted_only_as_far_as_dealkeeper_proxies(
    make_client: Callable[..., FlaskClient],
    redis_client: redis.Redis,
    proxies: int,
    hops: list[str],
    recorded: int,
) -> None:
    """Refusals are budgeted per sender: with no proxy the header is the sender's own words
    and one connection is one sender; with one proxy, the hop it appended (the last) names
    the sender and hops before it do not."""
    client = make_client(proxies=proxies)
    client.application.extensions["dealkeeper"].budget = RejectionBudget(per_client=1)
    for hop in hops:
        post(client, envelope(), {"X-Forwarded-For": hop})
        post(client, envelope(), {"X-Forwarded-For": hop})

    assert recorded == refusals_counted(redis_client)


@pytest.mark.parametrize(
    "object_id", [".", "..", "oppo_x/../y", "oppo_1%2F..", "../lead_1", "oppo 1", "oppo_1."]
)
def test_intake_object_id_that_is_no_close_id_is_400(
    client: FlaskClient, queue: Queue, object_id: str
) -> None:
    """An opportunity id Close could not have made, one that would leave its path segment
    in a Close URL among them, is refused and nothing is queued."""
    body = envelope(object_id=object_id)

    answer = post(client, body, signed(body))

    assert 400 == answer.status_code
    assert "event.object_id must be a Close object id" in answer.get_json()["error"]
    assert 0 == queue.count


def test_intake_swept_action_is_dealkeepers_own_and_400(client: FlaskClient, queue: Queue) -> None:
    """A delivery claiming to be a sweep's event is refused, however well signed: only
    dealkeeper's sweeps make those."""
    body = envelope(action="swept", sweep="stale-deals")

    answer = post(client, body, signed(body))

    assert 400 == answer.status_code
    assert (
        "not a Close event: event.action 'swept' is dealkeeper's own; Close never sends it"
        == (answer.get_json()["error"])
    )
    assert 0 == queue.count


def test_intake_refused_deliveries_leave_the_last_webhook_time_alone(
    client: FlaskClient, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """401s (a wrong CLOSE_WEBHOOK_SECRET), 400s and 413s do not move last_webhook_at, so
    an outage of refusals is not taken for traffic; an accepted delivery does."""
    rules_path = tmp_path / "rules.yaml"
    post(client, envelope(), {})
    bad = envelope(object_id="..")
    post(client, bad, signed(bad))
    client.post("/webhooks/close", data=b"x" * (1024 * 1024 + 1))

    before = redis_client.hget(LAST_KEY, LAST_WEBHOOK_FIELD)
    metric_before = client.get("/metrics").get_data(as_text=True)
    status_before = collect_status(redis_client, rules_path=rules_path).last_webhook_at
    post(client, envelope(), signed(envelope()))

    assert (None, True) == (before, redis_client.hget(LAST_KEY, LAST_WEBHOOK_FIELD) is not None)
    # What operators see: the metric and `dealkeeper status`'s `last webhook` stood still.
    assert LAST_WEBHOOK_METRIC not in metric_before
    assert LAST_WEBHOOK_METRIC in client.get("/metrics").get_data(as_text=True)
    assert status_before is None
    assert collect_status(redis_client, rules_path=rules_path).last_webhook_at is not None
