"""`dealkeeper doctor` against the fake Close and a real Redis: all green, then each check
made to fail in turn, --json's shape, exit codes, and no secret in the output."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from fakeclose import FakeClose
from service.commands import doctor as doctor_command
from service.commands.cli import cli
from service.processing.catchup import CHECKPOINT_KEY

URL = "https://dealkeeper.example.com/webhooks/close"
WRONG_KEY = "sk-dealkeeper-wrong-0a7c"  # in tests/conftest.py's SUITE_SECRETS
RULES = """\
timezone: America/New_York
rules:
  - name: stamp-date-won
    trigger: [opportunity.created, opportunity.updated]
    if:
      - status: {changed_to: Won}
    then:
      - set: {date_won: today}
  - name: tag-big-deals
    trigger: opportunity.updated
    if:
      - value: {gte: 1000000}
    then:
      - add: {custom.Segment: Enterprise}
"""
ALL_CHECKS = ["key", "admin", "rules", "subscription", "clock", "rate limit", "event log"]
# doctor promises ten seconds against the real Close; against the fake on loopback it takes
# a fraction of one. The bound is generous because CI shares two cores with other jobs.
GENEROUS_BOUND_SEC = 5.0


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def seed(fake: FakeClose, *, url: str = URL) -> str:
    """The organization the rules expect, subscribed at `url`; returns the subscription id."""
    fake.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["Enterprise", "SMB"]
    )
    events = [
        {"object_type": "opportunity", "action": action}
        for action in ("created", "updated", "deleted")
    ]
    made = fake.webhook_subscriptions.create({"url": url, "events": events})
    return str(made["id"])


@pytest.fixture
def seeded(fake_close: FakeClose) -> str:
    return seed(fake_close)


@pytest.fixture
def run(fake_close: FakeClose, redis_url: str, rules_file: Path) -> Any:
    """Invoke dealkeeper with the fake Close, the test Redis and the test rules."""

    def invoke(*args: str, fake: FakeClose = fake_close, **overrides: str | None) -> Result:
        env = {
            "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
            "CLOSE_API_URL": fake.url,
            "REDIS_URL": redis_url,
            "DEALKEEPER_RULES": str(rules_file),
            "CLOSE_WEBHOOK_SECRET": None,
            "CLOSE_WEBHOOK_TOLERANCE": None,
            "REDIS_SSL_CERT_REQS": None,
        }
        return CliRunner().invoke(cli, list(args), env={**env, **overrides})

    return invoke


def checks_of(result: Result) -> dict[str, dict[str, Any]]:
    """The --json answer's checks by name."""
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def failing(result: Result) -> list[str]:
    return [name for name, c in checks_of(result).items() if not c["ok"]]


def test_doctor_passes_a_sound_deployment(run: Any, seeded: str) -> None:
    """Every check passes, one ✓ line each in a fixed order, exit 0, within the budget."""
    started = time.perf_counter()
    result = run("doctor", "--url", URL)
    took = time.perf_counter() - started

    assert 0 == result.exit_code, result.output
    lines = result.stdout.splitlines()
    assert [f"✓ {name} " for name in ALL_CHECKS] == [
        line[: len(name) + 3] for line, name in zip(lines, ALL_CHECKS, strict=False)
    ]
    assert "7 checks, all passed" in lines[-1]
    assert took < GENEROUS_BOUND_SEC, f"doctor took {took:.2f} s"


def test_doctor_json_shape_and_exit_status(run: Any, seeded: str) -> None:
    """--json: ok, took_sec and one object per check with name, ok, detail and fix."""
    result = run("doctor", "--json", "--url", URL)

    answer = json.loads(result.stdout)
    assert (0, True) == (result.exit_code, answer["ok"])
    assert {"ok", "took_sec", "checks"} == set(answer)
    assert ALL_CHECKS == [c["name"] for c in answer["checks"]]
    for check in answer["checks"]:
        assert {"name", "ok", "detail", "fix"} == set(check)
        assert (True, None) == (check["ok"], check["fix"])
        assert isinstance(check["detail"], str) and check["detail"]


def test_doctor_finds_the_only_subscription_without_url(run: Any, seeded: str) -> None:
    """Without --url, the one subscription for opportunity events is the deployment's."""
    result = run("doctor", "--json")

    assert 0 == result.exit_code, result.output
    assert URL in checks_of(result)["subscription"]["detail"]


def test_doctor_refused_key(run: Any, seeded: str) -> None:
    """A key Close refuses fails the key check with the fix; the checks that need a key say
    so; the clock is still measured from the 401's Date header; the key is never shown."""
    result = run("doctor", "--json", "--url", URL, CLOSE_API_KEY=WRONG_KEY)

    found = checks_of(result)
    assert 1 == result.exit_code
    assert ["key", "admin", "rules", "subscription", "rate limit", "event log"] == failing(result)
    assert "401" in found["key"]["detail"] and "CLOSE_API_KEY" in found["key"]["fix"]
    assert found["clock"]["ok"]
    assert found["admin"]["detail"].startswith("not checked")
    assert WRONG_KEY not in result.output


def test_doctor_unreachable_close(run: Any, seeded: str, fake_close: FakeClose) -> None:
    """No Close at CLOSE_API_URL: the key check says to look at the URL and the network."""
    gone = fake_close.url
    fake_close.stop()

    result = run("doctor", "--json", CLOSE_API_URL=gone)

    assert 1 == result.exit_code
    assert "CLOSE_API_URL" in checks_of(result)["key"]["fix"]
    assert "Close did not answer" in checks_of(result)["clock"]["detail"]


def test_doctor_non_admin_key(run: Any, redis_url: str) -> None:
    """A key whose membership is not an admin's fails the admin check, with the role; the
    fix says that catch-up needs an admin's key for events older than an hour."""
    with FakeClose(admin=False) as fake:
        seed(fake)
        result = run("doctor", "--json", "--url", URL, fake=fake)

    found = checks_of(result)
    assert (1, ["admin"]) == (result.exit_code, failing(result))
    assert "role user in orga_fake" in found["admin"]["detail"]
    assert "catch-up needs one to read events older than an hour" in found["admin"]["fix"]


@pytest.mark.parametrize(
    ("permissions", "ok", "expected"),
    [
        (["export", "manage_organization"], True, "an admin's key (role role_"),
        (["export"], False, "not an admin's key (role role_"),
    ],
    ids=["manages-organization", "does-not"],
)
def test_doctor_custom_role(
    run: Any, fake_close: FakeClose, seeded: str, permissions: list[str], ok: bool, expected: str
) -> None:
    """A custom role is read with GET role/<id>/: an admin's when it may manage the
    organization."""
    role_id = fake_close.give_custom_role("Ops", permissions=permissions)

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["admin"]
    assert (ok, True) == (found["ok"], found["detail"].startswith(expected))
    assert 1 == len(fake_close.requests_matching("GET", f"role/{role_id}/"))


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (RULES.replace("custom.Segment", "custom.Segmnt"), "did you mean 'Segment'?"),
        (RULES.replace("changed_to: Won", "changed_to: Wonn"), "did you mean 'Won'?"),
        (RULES.replace("Enterprise}", "Enterprize}"), "did you mean 'Enterprise'?"),
    ],
    ids=["unknown-field", "unknown-status", "unknown-choice"],
)
def test_doctor_names_close_does_not_know(
    run: Any, seeded: str, rules_file: Path, rules: str, expected: str
) -> None:
    """A custom field, status label or choice the organization lacks fails the rules check
    with Close's closest name."""
    rules_file.write_text(rules)

    result = run("doctor", "--json", "--url", URL)

    assert (1, ["rules"]) == (result.exit_code, failing(result))
    assert expected in checks_of(result)["rules"]["detail"]
    assert "validate --online" in checks_of(result)["rules"]["fix"]


def test_doctor_add_to_a_single_value_field(
    run: Any, fake_close: FakeClose, rules_file: Path
) -> None:
    """A rule's add to a field holding one value fails the rules check."""
    fake_close.add_custom_field("Segment", type="choices", choices=["Enterprise", "SMB"])
    seed_subscription(fake_close)

    result = run("doctor", "--json", "--url", URL)

    assert (1, ["rules"]) == (result.exit_code, failing(result))
    assert "holds one value, so add cannot be used" in checks_of(result)["rules"]["detail"]


def seed_subscription(fake: FakeClose, *, url: str = URL) -> str:
    events = [{"object_type": "opportunity", "action": a} for a in ("created", "updated")]
    return str(fake.webhook_subscriptions.create({"url": url, "events": events})["id"])


def test_doctor_no_subscription(run: Any, fake_close: FakeClose) -> None:
    """No subscription at all: the fix is the subscribe command for this URL."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["Enterprise"]
    )

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["subscription"]
    assert (1, ["subscription"]) == (result.exit_code, failing(result))
    assert f"dealkeeper subscribe --url {URL}" in found["fix"]


def test_doctor_subscription_for_another_url(run: Any, fake_close: FakeClose) -> None:
    """A subscription delivering elsewhere is not this deployment's: it is named, and the
    fix subscribes this URL."""
    other = "https://old.example.com/webhooks/close"
    seed(fake_close, url=other)

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["subscription"]
    assert (1, ["subscription"]) == (result.exit_code, failing(result))
    assert other in found["detail"] and f"dealkeeper subscribe --url {URL}" in found["fix"]


def test_doctor_paused_subscription(run: Any, fake_close: FakeClose, seeded: str) -> None:
    """A paused subscription fails with its reason and the resume and catch-up commands."""
    fake_close.webhook_subscriptions.set_health(seeded, status="paused", pause_reason="api")

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["subscription"]
    assert (1, ["subscription"]) == (result.exit_code, failing(result))
    assert "it is paused (api)" in found["detail"]
    assert "--resume" in found["fix"] and "dealkeeper catch-up" in found["fix"]


def test_doctor_subscription_missing_a_trigger(run: Any, fake_close: FakeClose) -> None:
    """A subscription without an event the rules fire on (created) fails, naming it."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["Enterprise"]
    )
    events = [{"object_type": "opportunity", "action": "updated"}]
    fake_close.webhook_subscriptions.create({"url": URL, "events": events})

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["subscription"]
    assert (1, ["subscription"]) == (result.exit_code, failing(result))
    assert "does not carry opportunity.created" in found["detail"]


def test_doctor_failing_deliveries(run: Any, fake_close: FakeClose, seeded: str) -> None:
    """Deliveries Close reports failing now fail the check with Close's latest error; past
    errors alone are shown but pass."""
    error = "Exception name: HTTPError, Status code: 503"
    history = {"errors": [{"error": error, "event_id": "ev_1"}], "successes": []}
    fake_close.webhook_subscriptions.set_health(seeded, latest_error=error, history=history)
    passing = run("doctor", "--json", "--url", URL)
    fake_close.webhook_subscriptions.set_health(seeded, recent_consecutive_fail_buckets_cnt=2)

    result = run("doctor", "--json", "--url", URL)

    assert (0, f"1 recent delivery error, none now (latest: {error})") == (
        passing.exit_code,
        checks_of(passing)["subscription"]["detail"].split("; ")[-1],
    )
    assert (1, ["subscription"]) == (result.exit_code, failing(result))
    assert error in checks_of(result)["subscription"]["detail"]
    assert "send-test-event" in checks_of(result)["subscription"]["fix"]


@pytest.mark.parametrize(
    ("skew_sec", "tolerance", "expected"),
    [
        (600, None, "behind Close: webhooks signed more than 300 s ahead are refused"),
        (-120, "60", "ahead of Close: webhooks signed more than CLOSE_WEBHOOK_TOLERANCE=60"),
        (-400, None, "ahead of Close: catch-up re-reads only 300 s before each checkpoint"),
    ],
    ids=["close-ahead", "close-behind-tolerance", "close-behind-catchup"],
)
def test_doctor_skewed_clock(
    run: Any,
    fake_close: FakeClose,
    seeded: str,
    skew_sec: float,
    tolerance: str | None,
    expected: str,
) -> None:
    """Close's Date header far from this machine's clock fails the clock check, saying which
    webhooks (or catch-ups) it would cost."""
    fake_close.clock_skew_sec = skew_sec

    result = run("doctor", "--json", "--url", URL, CLOSE_WEBHOOK_TOLERANCE=tolerance)

    found = checks_of(result)["clock"]
    assert (1, ["clock"]) == (result.exit_code, failing(result))
    assert expected in found["detail"] and "NTP" in found["fix"]


def test_doctor_rate_limit_exhausted(run: Any, fake_close: FakeClose, seeded: str) -> None:
    """A window Close says has nothing left fails the rate-limit check, with when it resets.
    The limit is set to exactly the reads doctor makes, so its last read sees remaining=0."""
    run("doctor", "--url", URL)
    reads = len(fake_close.requests_matching("GET"))
    fake_close.set_rate_limit(reads, window_sec=60, group="read")

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["rate limit"]
    assert (1, ["rate limit"]) == (result.exit_code, failing(result))
    assert "nothing left for GET opportunity/" in found["detail"]
    assert "Close resets it in" in found["fix"]


def test_doctor_rate_limited(run: Any, fake_close: FakeClose, seeded: str) -> None:
    """A 429 (here on the event log) fails that check and the rate-limit check."""
    headers = {"ratelimit": "limit=40, remaining=0, reset=30", "retry-after": "30"}
    fake_close.fail_next(2, status=429, method="GET", path_prefix="event/", headers=headers)

    result = run("doctor", "--json", "--url", URL)

    assert (1, ["rate limit", "event log"]) == (result.exit_code, failing(result))
    assert "GET event/" in checks_of(result)["rate limit"]["detail"]


def test_doctor_event_log_refused(run: Any, fake_close: FakeClose, seeded: str) -> None:
    """An event log Close refuses fails its check with Close's words."""
    body = {"error": "You don't have permission to view events."}
    fake_close.fail_next(2, status=403, method="GET", path_prefix="event/", body=body)

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["event log"]
    assert (1, ["event log"]) == (result.exit_code, failing(result))
    assert "403 Forbidden for GET event/: You don't have permission" in found["detail"]


def test_doctor_event_log_without_data_back_to_the_checkpoint(
    run: Any, redis_client: redis.Redis
) -> None:
    """With a non-admin key, events by the checkpoint over an hour old come without their
    data: the event-log check fails (beside the admin check)."""
    with FakeClose(admin=False) as fake:
        seed(fake)
        fake.now = datetime.now(UTC) - timedelta(hours=3)
        created = fake.user_create({"value": 100})
        fake.user_update(created["object_id"], {"value": 200})
        fake.now = None
        redis_client.set(CHECKPOINT_KEY, (datetime.now(UTC) - timedelta(hours=3)).isoformat())
        result = run("doctor", "--json", "--url", URL, fake=fake)

    found = checks_of(result)["event log"]
    assert (1, ["admin", "event log"]) == (result.exit_code, failing(result))
    assert "1 of 1 events" in found["detail"] and "without their data" in found["detail"]
    assert "a non-admin's key event data for an hour only" in found["detail"]
    assert "use an admin's API key as CLOSE_API_KEY" in found["fix"]


def test_doctor_checkpoint_beyond_the_log(run: Any, seeded: str, redis_client: redis.Redis) -> None:
    """A checkpoint older than the 30 days Close keeps fails: a sweep is the fix."""
    redis_client.set(CHECKPOINT_KEY, (datetime.now(UTC) - timedelta(days=31)).isoformat())

    result = run("doctor", "--json", "--url", URL)

    found = checks_of(result)["event log"]
    assert (1, ["event log"]) == (result.exit_code, failing(result))
    assert "dealkeeper sweep" in found["fix"]


def test_doctor_redis_away(run: Any, seeded: str) -> None:
    """No Redis at REDIS_URL: the event-log check (it reads the checkpoint there) fails."""
    result = run("doctor", "--json", "--url", URL, REDIS_URL="redis://127.0.0.1:1/0")

    assert (1, ["event log"]) == (result.exit_code, failing(result))
    assert "REDIS_URL" in checks_of(result)["event log"]["fix"]


@pytest.fixture
def deal(fake_close: FakeClose, seeded: str) -> dict[str, Any]:
    return fake_close.add_opportunity(confidence=40, value=5000, note="keep me")


def test_doctor_write_probe_changes_nothing(
    run: Any, fake_close: FakeClose, deal: dict[str, Any]
) -> None:
    """--write-probe PUTs one field at the value it holds, with x-tz-offset; the deal stays
    exactly as it was, date_updated included, and no event is emitted."""
    events_before = len(fake_close.events)

    result = run("doctor", "--json", "--url", URL, "--write-probe", deal["id"])

    [put] = fake_close.requests_matching("PUT", "opportunity/")
    assert 0 == result.exit_code, result.output
    assert {"confidence": 40} == put.json
    assert put.headers["x-tz-offset"] in ("-5", "-4")  # New York, standard or daylight time
    assert deal == fake_close.opportunity(deal["id"])
    assert events_before == len(fake_close.events)
    assert "changed nothing" in checks_of(result)["write probe"]["detail"]


def test_doctor_write_probe_refused(run: Any, fake_close: FakeClose, deal: dict[str, Any]) -> None:
    """A write Close refuses fails the probe with Close's answer and the fix."""
    body = {"error": "You don't have permission to edit this opportunity."}
    fake_close.fail_next(1, status=403, method="PUT", path_prefix="opportunity/", body=body)

    result = run("doctor", "--json", "--url", URL, "--write-probe", deal["id"])

    found = checks_of(result)["write probe"]
    assert (1, ["write probe"]) == (result.exit_code, failing(result))
    assert "403 Forbidden for PUT" in found["detail"] and "edit every deal" in found["fix"]
    assert deal == fake_close.opportunity(deal["id"])


def test_doctor_write_probe_unknown_deal(run: Any, seeded: str) -> None:
    """An id Close does not know fails the probe; the fix says which id to pass."""
    result = run("doctor", "--json", "--url", URL, "--write-probe", "oppo_nothere")

    assert (1, ["write probe"]) == (result.exit_code, failing(result))
    assert "existing deal" in checks_of(result)["write probe"]["fix"]


def test_doctor_shows_no_secret(
    run: Any, fake_close: FakeClose, seeded: str, deal: dict[str, Any]
) -> None:
    """Neither the API key, the webhook secret nor the subscription's signature_key appears
    in any output, passing or failing, text or JSON."""
    signature_key = fake_close.webhook_subscriptions.get(seeded)["signature_key"]
    secret = "22" * 32
    outputs = [
        run("doctor", *args, "--url", URL, "--write-probe", deal["id"], **env).output
        for args in ([], ["--json"])
        for env in ({}, {"CLOSE_API_KEY": WRONG_KEY}, {"CLOSE_WEBHOOK_SECRET": secret})
    ]

    for output in outputs:
        for hidden in (FakeClose.DEFAULT_API_KEY, WRONG_KEY, secret, signature_key):
            assert hidden not in output


def test_doctor_stops_asking_a_slow_close_when_its_time_is_spent(
    run: Any, fake_close: FakeClose, seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the budget (10 s; 1 s here, to keep the test short) is spent, no further request
    goes to Close: the checks still waiting fail fast and say why, instead of adding their
    timeouts up."""
    monkeypatch.setattr(doctor_command, "DOCTOR_BUDGET_SEC", 1.0)
    fake_close.delay_next(1, 1.5, method="GET", path_prefix="webhook/")

    started = time.perf_counter()
    result = run("doctor", "--json", "--url", URL)
    took = time.perf_counter() - started

    assert (1, ["event log"]) == (result.exit_code, failing(result))
    assert "doctor's 1 s were spent" in checks_of(result)["event log"]["detail"]
    assert [] == fake_close.requests_matching("GET", "event/")
    assert took < 1.5 + GENEROUS_BOUND_SEC


def test_doctor_without_a_key(run: Any) -> None:
    """No CLOSE_API_KEY: exit 1 and what to set."""
    result = run("doctor", CLOSE_API_KEY=None)

    assert 1 == result.exit_code
    assert "set CLOSE_API_KEY" in result.output
