"""`dealkeeper doctor`'s pure judges and its output (service/core/doctor/results.py, diagnosis.py,
deliverychecks.py): the cases the fake Close does not play."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.config.errors import Problem
from service.core.doctor.delivery import probe_check, rules_check, subscription_check
from service.core.doctor.diagnosis import (
    Answer,
    admin_check,
    clock_check,
    custom_role_ids,
    endpoint_group,
    rate_limit_check,
    server_time_sec,
)
from service.core.doctor.results import failed, in_order, passed, render_text, to_json
from service.core.retry import RateLimitInfo
from service.core.rules.model import RuleSet

ROLE = "role_y6eLquXvRUdmwqi61tsmgCJUU7uGfxaRbDuLoONZL9p"  # Close's /me/ example


def me_with(**membership: Any) -> dict[str, Any]:
    return {"id": "user_1", "memberships": [{"organization_id": "orga_1", **membership}]}


@pytest.mark.parametrize(
    ("membership", "roles", "expected"),
    [
        ({"role_id": "admin"}, {}, "an admin's key"),
        ({"role_id": "superuser"}, {}, "not an admin's key"),
        ({"role_id": "user", "permissions_granted": ["manage_organization"]}, {}, "an admin's"),
        ({"role_id": ROLE}, {ROLE: {"permissions": ["export", "manage_organization"]}}, "an admin"),
        ({"role_id": ROLE}, {ROLE: {"permissions": ["bulk_edit", "export"]}}, "not an admin's"),
        ({"role_id": ROLE}, {}, "cannot tell whether the key is an admin's"),
    ],
    ids=["admin", "superuser", "granted", "custom-admin", "custom-not", "custom-unread"],
)
def test_admin_check_reads_roles_and_permissions(
    membership: dict[str, Any], roles: dict[str, Any], expected: str
) -> None:
    """Close's predefined admin role, the manage_organization permission (granted, or held
    by a custom role read with GET role/<id>/) make an admin; a role not read cannot tell."""
    found = admin_check(me_with(**membership), roles)

    assert found.detail.startswith(expected)
    assert found.ok == expected.startswith("an admin")


def test_admin_check_without_memberships_cannot_tell() -> None:
    """A /me/ with no memberships (an older answer) fails with what to do."""
    found = admin_check({"id": "user_1"}, {})

    assert (False, "cannot tell whether the key is an admin's (GET me/ lists no membership)") == (
        found.ok,
        found.detail,
    )


def test_custom_role_ids_lists_only_roles_me_cannot_decide() -> None:
    """Predefined roles and granted manage_organization need no GET role/<id>/."""
    me = {
        "memberships": [
            {"role_id": ROLE},
            {"role_id": "user"},
            {"role_id": "role_other", "permissions_granted": ["manage_organization"]},
        ]
    }

    assert [ROLE] == custom_role_ids(me)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Sun, 06 Dec 2026 03:00:00 GMT", datetime(2026, 12, 6, 3, tzinfo=UTC).timestamp()),
        (None, None),
        ("yesterday", None),
        ("Sun, 06 Dec 2026 03:00:00", None),  # no zone: not an HTTP date
    ],
)
def test_server_time_sec_reads_http_dates(header: str | None, expected: float | None) -> None:
    """An HTTP Date header is Unix seconds; anything else is unknown."""
    assert expected == server_time_sec(header)


@pytest.mark.parametrize(
    ("ahead_sec", "ok"),
    [(0.0, True), (299.0, True), (301.0, False), (-299.0, True), (-301.0, False)],
)
def test_clock_check_bounds(ahead_sec: float, ok: bool) -> None:
    """Within catch-up's overlap ahead and the webhooks' future window behind, it passes;
    just beyond either, it fails (the Date header's half second counted in)."""
    server = 1_000_000.0

    found = clock_check(
        local_sec=server + 0.5 + ahead_sec,
        server_sec=server,
        tolerance_sec=302_400,
        future_sec=300,
        catchup_overlap_sec=300,
    )

    assert ok == found.ok, found.detail


def test_clock_check_without_a_date_header_fails() -> None:
    """No Date header: the clock cannot be measured, and the check says why."""
    found = clock_check(
        local_sec=1.0, server_sec=None, tolerance_sec=60, future_sec=300, catchup_overlap_sec=300
    )

    assert (False, "Close's answer carried no readable Date header") == (found.ok, found.detail)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "opportunity/oppo_1/", "GET opportunity/"),
        ("put", "opportunity/oppo_1/", "PUT opportunity/"),
        ("GET", "status/opportunity/", "GET status/"),
        ("GET", "me/", "GET me/"),
    ],
)
def test_endpoint_group_names_the_resource(method: str, path: str, expected: str) -> None:
    """Ids and sub-paths fold into their resource."""
    assert expected == endpoint_group(method, path)


def test_rate_limit_check_without_headers_passes_and_says_so() -> None:
    """Close stating no limit is no failure: dealkeeper paces at its default."""
    found = rate_limit_check([Answer("GET me/", 200, None)])

    assert (True, "Close stated no limit (dealkeeper paces at 15/s)") == (found.ok, found.detail)


def test_rate_limit_check_fails_on_a_429_without_headers() -> None:
    """A 429 that named only a wait still fails, with that wait in the fix."""
    found = rate_limit_check([Answer("GET event/", 429, None, wait_sec=12.0)])

    assert (False, "nothing left for GET event/ ()") == (found.ok, found.detail)
    assert found.fix is not None and found.fix.startswith("Close resets it in 12 s.")


def test_rate_limit_check_shows_the_last_header_per_group() -> None:
    """Each group's last header is what is left now."""
    found = rate_limit_check(
        [
            Answer("GET me/", 200, RateLimitInfo(40, 39, 1.0)),
            Answer("GET me/", 200, RateLimitInfo(40, 38, 0.5)),
        ]
    )

    assert (True, "GET me/ 38 of 40 left, window ends in 0.5 s") == (found.ok, found.detail)


def subscription(**fields: Any) -> dict[str, Any]:
    events = [{"object_type": "opportunity", "action": "updated"}]
    return {
        "id": "whsub_1",
        "url": "https://a/webhooks/close",
        "status": "active",
        "events": events,
        **fields,
    }


def test_subscription_check_needs_a_url_when_several_deliver() -> None:
    """Two subscriptions for opportunities and no --url: which is ours is not guessed."""
    found = subscription_check(
        [subscription(), subscription(id="whsub_2", url="https://b/webhooks/close")],
        url=None,
        triggers={"opportunity.updated"},
    )

    assert (False, True) == (found.ok, "--url" in (found.fix or ""))


def test_subscription_check_flags_duplicates_at_one_url() -> None:
    """Two subscriptions to the same URL deliver each event twice: the extra is named."""
    found = subscription_check(
        [subscription(), subscription(id="whsub_2")],
        url="https://a/webhooks/close",
        triggers={"opportunity.updated"},
    )

    assert (False, "delete whsub_2 in Close") == (found.ok, found.fix)


def test_rules_check_shows_three_problems_and_counts_the_rest() -> None:
    """Long lists are cut: three shown, the rest counted."""
    problems = [Problem("r.yaml", line, 1, f"problem {line}") for line in range(1, 6)]

    found = rules_check(RuleSet(), problems)

    assert found.detail.endswith("r.yaml:3:1: problem 3 and 2 more")


def test_probe_check_reports_close_stamps_but_not_as_changes() -> None:
    """date_updated moved by Close is reported; any other difference fails."""
    before = {"id": "oppo_1", "confidence": 40, "date_updated": "t1", "value": 5}
    stamped = {**before, "date_updated": "t2"}
    changed = {**stamped, "value": 6}

    kept = probe_check("oppo_1", update={"confidence": 40}, before=before, after=stamped)
    moved = probe_check("oppo_1", update={"confidence": 40}, before=before, after=changed)

    assert (True, "Close stamped date_updated") == (kept.ok, kept.detail.split("; ")[-1])
    assert (False, True) == (moved.ok, moved.detail.endswith("changed value"))


def test_render_text_marks_each_check_and_indents_the_fix() -> None:
    """✓ or ✗, the name in a column, the fix under a failure, a summary line."""
    checks = in_order([failed("clock", "off by an hour", "use NTP"), passed("key", "works")])

    assert [
        "✓ key           works",
        "✗ clock         off by an hour",
        "                fix: use NTP",
        "2 checks, 1 failed (0.2 s)",
    ] == render_text(checks, took_sec=0.21).splitlines()


def test_to_json_fix_is_null_when_ok() -> None:
    """Scripts read ok per check and overall; fix is null for a pass."""
    answer = to_json([passed("key", "works")], took_sec=0.1234)

    assert {
        "ok": True,
        "took_sec": 0.123,
        "checks": [{"name": "key", "ok": True, "detail": "works", "fix": None}],
    } == answer
