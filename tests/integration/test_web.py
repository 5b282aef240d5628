"""The webhook endpoint against a real Redis: every bad input gets its answer, nothing leaks."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue
from rq.serializers import JSONSerializer

from fakeclose import FakeClose
from fakeclose.store import ORGANIZATION_ID
from service.adapters.close import CloseClient
from service.adapters.embedded import RedisServer, free_port
from service.adapters.organization import OrganizationWatch
from service.config import defaults
from service.config.settings import Settings
from service.intake import signatures
from service.observability import logs

KEY = bytes.fromhex("11" * 32)
OTHER_KEY = bytes.fromhex("22" * 32)
NOW = 1_800_000_000.0
RULES = "rules:\n  - name: full-confidence\n    then:\n      - set: {confidence: 100}\n"


def envelope(**event: Any) -> dict[str, Any]:
    body = {
        "id": "ev_1",
        "object_type": "opportunity",
        "object_id": "oppo_1",
        "action": "updated",
        "date_created": "2026-11-28T03:30:00.000000",
        "date_updated": "2026-11-28T03:30:00.000000",
        "changed_fields": ["status_id"],
        "previous_data": {"status_id": "stat_a"},
        "data": {"id": "oppo_1", "status_id": "stat_b"},
    }
    body.update(event)
    return {"subscription_id": "whsub_1", "event": body}


def signed(body: bytes, *, key: bytes = KEY, at: float = NOW) -> dict[str, str]:
    return signatures.signed_headers(body, key=key, timestamp=int(at))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yaml").write_text(RULES)
    return folder


@pytest.fixture
def make_client(
    redis_url: str, rules_dir: Path, web_client_for: Callable[..., FlaskClient]
) -> Callable[..., FlaskClient]:
    def make(**changes: Any) -> FlaskClient:
        settings = Settings(
            webhook_secrets=(KEY, OTHER_KEY), redis_url=redis_url, rules_path=str(rules_dir)
        ).with_changes(**changes)
        return web_client_for(settings, now=NOW)

    return make


@pytest.fixture
def client(make_client: Callable[..., FlaskClient]) -> FlaskClient:
    return make_client()


@pytest.fixture
def queue(redis_client: redis.Redis) -> Queue:
    return Queue(defaults.QUEUE_NAME, connection=redis_client, serializer=JSONSerializer)


def post(client: FlaskClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        "/webhooks/close", data=body, headers={**headers, "content-type": "application/json"}
    )


def get(client: FlaskClient, path: str) -> Any:
    return client.get(path)


def nothing_queued(redis_client: redis.Redis, queue: Queue) -> bool:
    return queue.count == 0 and not redis_client.keys("dk:seen:*")


def test_web_signed_event_is_queued_with_202(client: FlaskClient, queue: Queue) -> None:
    """A correctly signed opportunity event is answered 202 once its job is in Redis."""
    body = json.dumps(envelope()).encode()

    response = post(client, body, signed(body))

    assert 202 == response.status_code
    assert "queued" == response.json["status"]
    job = queue.jobs[0]
    assert ["ev_1"] == [job.args[0]["id"]]
    assert response.json["job_id"] == job.id


def test_web_any_configured_key_is_accepted(client: FlaskClient, queue: Queue) -> None:
    """With several comma-separated keys, a body signed with the second one is accepted."""
    body = json.dumps(envelope()).encode()

    response = post(client, body, signed(body, key=OTHER_KEY))

    assert 202 == response.status_code
    assert 1 == queue.count


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing close-sig-hash or close-sig-timestamp"),
        (
            {signatures.TIMESTAMP_HEADER: str(int(NOW))},
            "missing close-sig-hash or close-sig-timestamp",
        ),
        (
            {signatures.HASH_HEADER: "00" * 32, signatures.TIMESTAMP_HEADER: str(int(NOW))},
            "signature does not match",
        ),
        (
            {signatures.HASH_HEADER: "ab", signatures.TIMESTAMP_HEADER: "soon"},
            "close-sig-timestamp is not a number",
        ),
    ],
)
def test_web_unsigned_or_wrongly_signed_is_401(
    client: FlaskClient,
    queue: Queue,
    redis_client: redis.Redis,
    headers: dict[str, str],
    reason: str,
) -> None:
    """Missing or wrong signatures get 401 and leave nothing in the queue."""
    body = json.dumps(envelope()).encode()

    response = post(client, body, headers)

    assert (401, reason) == (response.status_code, response.json["error"])
    assert nothing_queued(redis_client, queue)


def test_web_signature_with_an_unknown_key_is_401(client: FlaskClient, queue: Queue) -> None:
    """A body signed with a key that is not configured is refused."""
    body = json.dumps(envelope()).encode()

    response = post(client, body, signed(body, key=bytes.fromhex("33" * 32)))

    assert 401 == response.status_code
    assert 0 == queue.count


def test_web_signature_over_a_changed_body_is_401(client: FlaskClient, queue: Queue) -> None:
    """A signature is over the exact raw body: one changed byte breaks it."""
    body = json.dumps(envelope()).encode()
    headers = signed(body)

    response = post(client, body.replace(b"oppo_1", b"oppo_2"), headers)

    assert 401 == response.status_code
    assert 0 == queue.count


TOLERANCE = defaults.WEBHOOK_TOLERANCE_SEC


@pytest.mark.parametrize("offset", [301, 3600, -TOLERANCE - 1, -7 * 24 * 3600])
def test_web_stale_or_future_timestamp_is_401(
    client: FlaskClient, queue: Queue, offset: int
) -> None:
    """A timestamp more than 5 minutes ahead (clock skew at most) or older than the retry
    window is refused."""
    body = json.dumps(envelope()).encode()

    response = post(client, body, signed(body, at=NOW + offset))

    assert 401 == response.status_code
    assert "away from now" in response.json["error"]
    assert 0 == queue.count


# Close's last retry, 72 hours after the first attempt, and a little later: Close's
# schedule (up to 20 minutes apart) and a busy queue on its side may add to the 72 hours.
CLOSE_LAST_RETRY = -72 * 3600 - 20 * 60


@pytest.mark.parametrize("offset", [-301, -2 * 3600, -71 * 3600, CLOSE_LAST_RETRY, -TOLERANCE, 300])
def test_web_a_retry_signed_hours_ago_is_accepted(
    client: FlaskClient, queue: Queue, offset: int
) -> None:
    """Close retries a failed delivery for 72 hours and does not say it signs a retry
    afresh: a delivery signed up to the window's end ago (or 5 minutes ahead) is queued,
    and the default window reaches past Close's last retry."""
    body = json.dumps(envelope()).encode()

    assert 202 == post(client, body, signed(body, at=NOW + offset)).status_code
    assert 1 == queue.count


def test_web_a_replayed_old_delivery_is_a_duplicate(client: FlaskClient, queue: Queue) -> None:
    """What makes the long window safe: the same delivery again, a day later, is answered
    `duplicate` and queues nothing more."""
    body = json.dumps(envelope()).encode()
    headers = signed(body, at=NOW - 3600)

    first, again = post(client, body, headers), post(client, body, headers)

    assert (202, 200, "duplicate") == (first.status_code, again.status_code, again.json["status"])
    assert 1 == queue.count


def test_web_tolerance_comes_from_settings(make_client: Callable[..., FlaskClient]) -> None:
    """CLOSE_WEBHOOK_TOLERANCE sets the window; set under 5 minutes, it bounds the future
    side too."""
    client = make_client(webhook_tolerance_sec=60)
    bodies = [json.dumps(envelope(id=f"ev_{n}")).encode() for n in range(4)]

    assert [202, 401, 202, 401] == [
        post(client, body, signed(body, at=NOW + offset)).status_code
        for body, offset in zip(bodies, (-60, -61, 60, 61), strict=True)
    ]


def test_web_body_over_one_mib_is_413(
    client: FlaskClient, queue: Queue, redis_client: redis.Redis
) -> None:
    """A body over 1 MiB is refused before anything else is done with it."""
    event = envelope(data={"id": "oppo_1", "note": "x" * defaults.MAX_WEBHOOK_BYTES})
    body = json.dumps(event).encode()

    response = post(client, body, signed(body))

    assert 413 == response.status_code
    assert nothing_queued(redis_client, queue)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, 2]", "not a Close event: body must be a JSON object with an 'event' object"),
        (b'{"event": 5}', "not a Close event: missing 'event' object"),
        (
            json.dumps(envelope(id=None)).encode(),
            "not a Close event: event.id must be a non-empty string",
        ),
        (
            json.dumps(envelope(date_created="yesterday")).encode(),
            "not a Close event: event.date_created must be an ISO 8601 timestamp, got 'yesterday'",
        ),
        (
            json.dumps(envelope(changed_fields="status")).encode(),
            "not a Close event: event.changed_fields must be a list of strings",
        ),
    ],
)
def test_web_bad_json_is_400_with_a_short_reason(
    client: FlaskClient, queue: Queue, redis_client: redis.Redis, body: bytes, reason: str
) -> None:
    """Signed bodies that are not Close event envelopes get 400 and a JSON reason."""
    response = post(client, body, signed(body))

    assert (400, {"error": reason}) == (response.status_code, response.json)
    assert nothing_queued(redis_client, queue)


DEEP_DATA = {"id": "oppo_1", "note": json.loads("[" * 200 + "]" * 200)}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested deeper than 32 levels"),
        (json.dumps(envelope(data=DEEP_DATA)).encode(), "JSON nested deeper than 32 levels"),
        (
            json.dumps(envelope(data={"id": "oppo_1", "value": float("nan")})).encode(),
            "JSON does not allow NaN",
        ),
        (
            json.dumps(envelope(data={"id": "oppo_1", "value": float("-inf")})).encode(),
            "JSON does not allow -Infinity",
        ),
    ],
)
def test_web_hostile_json_is_400_and_the_next_delivery_is_served(
    client: FlaskClient,
    queue: Queue,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    reason: str,
) -> None:
    """Nesting that would exhaust Python's recursion, and NaN or Infinity, which JSON does
    not have: a 400 with the reason (a 5xx would be retried by Close for 72 hours), nothing
    at ERROR, and the next delivery is queued."""
    caplog.set_level(logging.INFO)
    refused = post(client, body, signed(body))
    refused_nothing_queued = nothing_queued(redis_client, queue)
    good = json.dumps(envelope()).encode()
    served = post(client, good, signed(good))

    assert (400, {"error": reason}, True, 202) == (
        refused.status_code,
        refused.json,
        refused_nothing_queued,
        served.status_code,
    )
    assert [] == [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_web_events_about_other_objects_are_ignored(
    client: FlaskClient, queue: Queue, redis_client: redis.Redis
) -> None:
    """A signed lead event gets 200 'ignored' and queues nothing."""
    body = json.dumps(envelope(object_type="lead", object_id="lead_1")).encode()

    response = post(client, body, signed(body))

    assert (200, "ignored") == (response.status_code, response.json["status"])
    assert nothing_queued(redis_client, queue)


def test_web_repeated_delivery_is_queued_once(client: FlaskClient, queue: Queue) -> None:
    """The same event (id and date_updated) delivered twice is queued once."""
    body = json.dumps(envelope()).encode()

    first = post(client, body, signed(body))
    second = post(client, body, signed(body))

    assert (202, 200) == (first.status_code, second.status_code)
    assert "duplicate" == second.json["status"]
    assert 1 == queue.count


def test_web_event_is_queued_in_one_round_trip(
    client: FlaskClient, queue: Queue, redis_client: redis.Redis
) -> None:
    """Dedupe record, pending list, job and counters go to Redis in one script call: no
    WATCH, no MULTI/EXEC, one EVALSHA (a warm process; the first call also loads it)."""
    warm = json.dumps(envelope(id="ev_warm")).encode()
    post(client, warm, signed(warm))
    redis_client.config_resetstat()
    body = json.dumps(envelope()).encode()

    response = post(client, body, signed(body))
    stats = redis_client.info("commandstats")

    assert (202, 1) == (response.status_code, stats["cmdstat_evalsha"]["calls"])
    assert not {"cmdstat_watch", "cmdstat_multi", "cmdstat_exec"} & set(stats)


def test_web_consolidated_event_is_queued_again(client: FlaskClient, queue: Queue) -> None:
    """The same event id with a later date_updated (Close consolidated it) is new work."""
    first = json.dumps(envelope()).encode()
    later = json.dumps(envelope(date_updated="2026-11-28T03:30:05.000000")).encode()

    post(client, first, signed(first))
    response = post(client, later, signed(later))

    assert 202 == response.status_code
    assert 2 == queue.count


@pytest.fixture
def doomed_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(data_dir=tmp_path / "doomed", port=free_port(), persistent=False).start()
    yield server
    server.stop()


@pytest.mark.allow_error_logs
def test_web_redis_unreachable_is_503(
    doomed_redis: RedisServer, make_client: Callable[..., FlaskClient]
) -> None:
    """When Redis cannot take the event the answer is 503, so Close delivers it again."""
    client = make_client(redis_url=doomed_redis.url)
    doomed_redis.stop()
    body = json.dumps(envelope()).encode()

    response = post(client, body, signed(body))

    assert 503 == response.status_code
    assert "30" == response.headers["Retry-After"]


def test_web_healthz_answers_while_the_process_lives(client: FlaskClient) -> None:
    """Liveness does not depend on Redis or rules."""
    assert (200, {"status": "ok"}) == (
        client.get("/healthz").status_code,
        client.get("/healthz").json,
    )


def test_web_readyz_is_200_with_redis_and_rules(client: FlaskClient) -> None:
    """Ready: Redis answers and good rules are loaded; the rules' digest is shown."""
    response = get(client, "/readyz")

    assert 200 == response.status_code
    assert ("ready", 1) == (response.json["status"], response.json["rules"])
    assert 12 == len(response.json["rules_digest"])


def test_web_readyz_is_503_without_redis(
    doomed_redis: RedisServer, make_client: Callable[..., FlaskClient]
) -> None:
    """Not ready when Redis does not answer."""
    client = make_client(redis_url=doomed_redis.url)
    doomed_redis.stop()

    response = get(client, "/readyz")

    assert 503 == response.status_code
    assert response.json["problems"][0].startswith("redis:")


@pytest.mark.allow_error_logs
def test_web_readyz_is_503_with_broken_rules(
    make_client: Callable[..., FlaskClient], rules_dir: Path
) -> None:
    """Not ready when no good rules could be loaded; the problem is named."""
    (rules_dir / "rules.yaml").write_text("rules:\n  - name: x\n    thne: []\n")
    client = make_client()

    response = get(client, "/readyz")

    assert 503 == response.status_code
    assert "rules.yaml:3:5" in response.json["problems"][0]


def test_web_metrics_count_webhooks_by_outcome(client: FlaskClient) -> None:
    """/metrics shows what the endpoint answered, in Prometheus text format."""
    body = json.dumps(envelope()).encode()
    post(client, body, signed(body))
    post(client, body, signed(body))
    post(client, body, {})

    text = client.get("/metrics").get_data(as_text=True)

    assert 'dealkeeper_webhooks_total{outcome="queued"} 1.0' in text
    assert 'dealkeeper_webhooks_total{outcome="duplicate"} 1.0' in text
    assert 'dealkeeper_webhooks_total{outcome="rejected_401"} 1.0' in text
    assert "dealkeeper_queue_depth 1.0" in text


METRICS_TOKEN = "mt-dealkeeper-test-7c2e41d9"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong-token", 401),
        (f"Basic {METRICS_TOKEN}", 401),
        (f"Bearer {METRICS_TOKEN}x", 401),
        (f"Bearer {METRICS_TOKEN}", 200),
        (f"bearer  {METRICS_TOKEN}", 200),
    ],
)
def test_web_metrics_with_a_token_answer_only_its_bearer(
    make_client: Callable[..., FlaskClient], authorization: str | None, status: int
) -> None:
    """With DEALKEEPER_METRICS_TOKEN set, rule names and volumes are not shown to whoever
    finds the URL; a refusal says what to send and shows nothing."""
    client = make_client(metrics_token=METRICS_TOKEN)
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/metrics", headers=headers)

    assert status == response.status_code
    if status == 401:
        assert 'Bearer realm="dealkeeper metrics"' == response.headers["WWW-Authenticate"]
        assert "dealkeeper_" not in response.get_data(as_text=True)


def test_web_rejections_never_echo_the_signature(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the answer nor the log lines carry the signature that was sent: the JSON
    lines as the service writes them, `extra=` fields and all."""
    body = json.dumps(envelope()).encode()
    headers = signed(body, at=time.time() - 10_000)
    json_lines = logs.JSONFormatter(logs.Redactor())

    with caplog.at_level(logging.DEBUG):
        response = post(client, body, headers)

    written = "\n".join(json_lines.format(record) for record in caplog.records)
    assert "webhook_rejected" in written
    assert headers[signatures.HASH_HEADER] not in response.get_data(as_text=True)
    assert headers[signatures.HASH_HEADER] not in written


@pytest.fixture
def organization_known(fake_close: FakeClose, redis_client: redis.Redis) -> str:
    """The organization of the API key, learnt from Close's `GET /me/` as a worker does."""
    with CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake_close.url) as close:
        OrganizationWatch(redis_client, close).refresh()
    return ORGANIZATION_ID


def test_web_event_of_another_organization_is_refused_with_403(
    client: FlaskClient,
    queue: Queue,
    redis_client: redis.Redis,
    organization_known: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Signed with one of our keys but about an organization our API key does not belong to
    (another organization's subscription): 403, nothing queued, no dedupe record, and a
    log line that says which key to look at."""
    body = json.dumps(envelope(organization_id="orga_other")).encode()

    response = post(client, body, signed(body))

    [line] = [r for r in caplog.records if r.getMessage() == "webhook_rejected"]
    reason = (
        "event of organization orga_other (webhook subscription whsub_1), but CLOSE_API_KEY "
        f"belongs to {organization_known}: CLOSE_WEBHOOK_SECRET holds that subscription's "
        "signature key; remove it"
    )
    assert (403, reason, True) == (
        response.status_code,
        response.json["error"],
        nothing_queued(redis_client, queue),
    )
    assert (logging.WARNING, 403, reason) == (
        line.levelno,
        getattr(line, "status"),  # noqa: B009 - set through `extra=`
        getattr(line, "reason"),  # noqa: B009
    )


def test_web_event_of_our_organization_is_queued(
    client: FlaskClient, queue: Queue, organization_known: str
) -> None:
    """An event of the organization CLOSE_API_KEY belongs to is queued as ever."""
    body = json.dumps(envelope(organization_id=organization_known)).encode()

    response = post(client, body, signed(body))

    assert (202, 1) == (response.status_code, queue.count)


def test_web_event_is_accepted_while_the_organization_is_unknown(
    client: FlaskClient, queue: Queue
) -> None:
    """No worker has learnt the organization yet (dry run, no key, /me/ failed): accepted."""
    body = json.dumps(envelope(organization_id="orga_other")).encode()

    response = post(client, body, signed(body))

    assert (202, 1) == (response.status_code, queue.count)


def test_web_organization_check_costs_no_round_trip_once_read(
    client: FlaskClient, queue: Queue, redis_client: redis.Redis, organization_known: str
) -> None:
    """The organization is read from Redis once in a while, not with every webhook: a warm
    process queues an event with its one EVALSHA and nothing else."""
    warm = json.dumps(envelope(id="ev_warm", organization_id=organization_known)).encode()
    post(client, warm, signed(warm))
    redis_client.config_resetstat()
    body = json.dumps(envelope(organization_id=organization_known)).encode()

    response = post(client, body, signed(body))
    stats = redis_client.info("commandstats")

    assert (202, 1, False) == (
        response.status_code,
        stats["cmdstat_evalsha"]["calls"],
        "cmdstat_get" in stats,
    )
