"""The status report's table and JSON, from plain data and a fixed time."""

from __future__ import annotations

import pytest

from service.core.redispolicy import EvictionPolicy
from service.core.status import (
    CatchUpRun,
    KeyRefusal,
    QueueState,
    RateLimit,
    RulesState,
    Status,
    duration,
    iso,
    render_table,
    to_json,
)

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


def sample(**changes: object) -> Status:
    values: dict[str, object] = {
        "queue": QueueState(3, 1, 2, 4, oldest_waiting_at=NOW - 75, workers=2),
        "rules": RulesState("rules", 3, "3c5bfb80dace"),
        "last_webhook_at": NOW - 4,
        "last_close_call_at": None,
        "rate_limit": RateLimit(20, 18, 0.8, NOW - 3, "PUT", "opportunity/o1/"),
        "close_requests": 120,
        "close_rate_limited": 2,
        "close_retries": 5,
        "events": {"no_update": 70, "applied": 40},
        "webhooks": {},
        "redis_policy": EvictionPolicy("noeviction"),
    }
    values.update(changes)
    return Status(**values)  # type: ignore[arg-type]


def test_status_table_lists_every_fact() -> None:
    """One aligned line per fact, ages relative to now."""
    assert (
        "dealkeeper status at 2027-01-15 08:00:00 UTC\n"
        "queue             3 waiting (oldest 1m 15s), 1 in progress, 2 scheduled, 4 failed\n"
        "workers           2\n"
        "rules             3 rules in rules (digest 3c5bfb80dace)\n"
        "last webhook      2027-01-15 07:59:56 UTC (4.0s ago)\n"
        "last Close call   never\n"
        "Close rate limit  18 of 20 left, reset in 0.8s (PUT opportunity/o1/, 3.0s ago)\n"
        "Close requests    120 (2 rate limited, 5 retries)\n"
        "events            applied 40, no_update 70\n"
        "webhooks          none yet\n"
        "Redis policy      noeviction"
    ) == render_table(sample(), now=NOW)


def test_status_table_says_when_redis_would_not_tell_its_policy() -> None:
    """A Redis refusing INFO and CONFIG: the policy is unknown, and the line says what to do."""
    lines = render_table(sample(redis_policy=EvictionPolicy(None)), now=NOW).splitlines()

    assert (
        "Redis policy      unknown (Redis refused INFO and CONFIG): make sure it is noeviction"
        == (lines[-1])
    )


def test_status_table_lists_rules_problems() -> None:
    """Invalid rules say so on their line, then each problem below the table."""
    broken = RulesState("rules", None, None, ("rules/a.yaml:3:5: unknown key 'thne'",))

    lines = render_table(sample(rules=broken), now=NOW).splitlines()

    assert "rules             INVALID in rules: 1 problem(s), shown below" == lines[3]
    assert "  rules/a.yaml:3:5: unknown key 'thne'" == lines[-1]


def test_status_json_has_iso_times_and_ages() -> None:
    """Times are ISO 8601 UTC; ages are seconds; absent times are null."""
    data = to_json(sample(), now=NOW)

    assert ("2027-01-15T08:00:00.000Z", "2027-01-15T07:59:56.000Z", 4.0) == (
        data["at"],
        data["last_webhook_at"],
        data["last_webhook_age_sec"],
    )
    assert (None, None) == (data["last_close_call_at"], data["last_close_call_age_sec"])
    assert (75.0, "2027-01-15T07:58:45.000Z") == (
        data["queue"]["oldest_waiting_age_sec"],
        data["queue"]["oldest_waiting_at"],
    )
    assert "2027-01-15T07:59:57.000Z" == data["close_rate_limit"]["seen_at"]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.44, "0.4s"),
        (12, "12s"),
        (192, "3m 12s"),
        (7500, "2h 5m"),
        (273600, "3d 4h"),
        (-1, "0.0s"),
    ],
)
def test_status_duration_is_short(seconds: float, expected: str) -> None:
    """Durations read at a glance: the largest unit and the next one."""
    assert expected == duration(seconds)


def test_status_iso_keeps_milliseconds() -> None:
    """iso() keeps milliseconds and marks UTC with Z."""
    assert "2027-01-15T08:00:00.250Z" == iso(NOW + 0.25)


def test_status_table_warns_when_the_last_catch_up_left_events_without_data() -> None:
    """A last catch-up that read events without their data adds a line saying what to do;
    one that did not adds nothing."""
    left = CatchUpRun(NOW - 90, read=7, queued=2, duplicates=3, skipped=0, no_payload=2)
    clean = CatchUpRun(NOW - 90, read=7, queued=2, duplicates=5, skipped=0, no_payload=0)

    lines = render_table(sample(catch_up=left), now=NOW).splitlines()

    assert (
        "last catch-up found 2 event(s) without their data (a non-admin API key reads an "
        "event's data only for an hour): they were left for Close's webhook retries; give "
        "catch-up an admin's API key, or run a sweep to recover a longer outage "
        "(2027-01-15 07:58:30 UTC, 1m 30s ago)"
    ) == lines[-1]
    assert render_table(sample(), now=NOW) == render_table(sample(catch_up=clean), now=NOW)


def test_status_json_has_the_last_catch_up() -> None:
    """--json gives the last catch-up's counts and time (null before the first)."""
    run = CatchUpRun(NOW - 90, read=7, queued=2, duplicates=3, skipped=0, no_payload=2)

    assert (None, {
        "at": "2027-01-15T07:58:30.000Z", "read": 7, "queued": 2, "duplicates": 3,
        "skipped": 0, "no_payload": 2,
    }) == (
        to_json(sample(), now=NOW)["last_catch_up"],
        to_json(sample(catch_up=run), now=NOW)["last_catch_up"],
    )  # fmt: skip


REFUSED = KeyRefusal(401, "401 Unauthorized for GET me/: Unauthorized", NOW - 130, "0a1b2c3d4e5f")


def test_status_table_says_when_close_refuses_the_key() -> None:
    """Only while it lasts: the line says what happened since when, and what to do."""
    assert "CLOSE_API_KEY" not in render_table(sample(), now=NOW)
    assert render_table(sample(key_refused=REFUSED), now=NOW).splitlines()[-1] == (
        "Close refuses CLOSE_API_KEY (401 Unauthorized for GET me/: Unauthorized; since "
        "2027-01-15 07:57:50 UTC, 2m 10s ago): workers are paused; events wait in the queue, "
        "none is lost; set a working CLOSE_API_KEY and restart the workers, or make the key "
        "work again at Close: workers go on by themselves"
    )


def test_status_json_has_the_key_refusal() -> None:
    assert to_json(sample(), now=NOW)["close_key_refused"] is None
    refused = to_json(sample(key_refused=REFUSED), now=NOW)["close_key_refused"]
    assert (401, "2027-01-15T07:57:50.000Z", "0a1b2c3d4e5f") == (
        refused["status"],
        refused["since"],
        refused["key_fingerprint"],
    )
