"""The organization of CLOSE_API_KEY: learnt from the fake Close's `GET /me/` into a real
Redis by a worker's watch, read back by a web process's memo."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis

from fakeclose import FakeClose
from fakeclose.store import ORGANIZATION_ID
from service.adapters.close import CloseClient
from service.adapters.organization import (
    ORGANIZATIONS_KEY,
    ORGANIZATIONS_RETRY_SEC,
    KnownOrganizations,
    OrganizationWatch,
    organizations_of,
    refusal,
)
from service.core.events import Event


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_organizations_of_reads_every_organization_me_names() -> None:
    """A user may belong to several organizations; `organization_id` counts too."""
    me = {
        "organizations": [{"id": "orga_a"}, {"id": "orga_b"}, "junk"],
        "organization_id": "orga_c",
    }

    assert frozenset({"orga_a", "orga_b", "orga_c"}) == organizations_of(me)


@pytest.mark.parametrize(
    ("event_organization", "known", "refused"),
    [
        ("orga_x", frozenset({"orga_a"}), True),
        ("orga_a", frozenset({"orga_a", "orga_b"}), False),
        ("orga_x", frozenset(), False),
        (None, frozenset({"orga_a"}), False),
    ],
)
def test_refusal_only_when_both_sides_are_known_and_differ(
    event_organization: str | None, known: frozenset[str], refused: bool
) -> None:
    """Unknown on either side means accepted, as before the check existed."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    event = Event("ev_1", "opportunity", "updated", "oppo_1", moment, moment)

    assert refused == (
        refusal(replace(event, organization_id=event_organization), known) is not None
    )


def test_watch_that_cannot_ask_close_keeps_quiet_until_it_is_time_to_ask_again(
    fake_close: FakeClose,
    make_client: Callable[..., CloseClient],
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """/me/ refused: a warning, nothing shared, no second request before the retry time;
    then it learns the organization and shares it."""
    clock = Clock()
    watch = OrganizationWatch(redis_client, make_client(max_attempts=1), clock=clock)
    fake_close.fail_next(1, status=503, method="GET", path_prefix="me/")

    watch.refresh_if_due()
    watch.refresh_if_due()
    missed = (watch.known, redis_client.get(ORGANIZATIONS_KEY))
    clock.now += ORGANIZATIONS_RETRY_SEC
    watch.refresh_if_due()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        (frozenset(), None),
        ["organization_unknown"],
        frozenset({ORGANIZATION_ID}),
        ORGANIZATION_ID.encode(),
        2,
    ) == (
        missed,
        [w for w in warnings if w.startswith("organization")],
        watch.known,
        redis_client.get(ORGANIZATIONS_KEY),
        len(fake_close.requests_matching("GET", "me/")),
    )


def test_known_organizations_reads_redis_once_per_memo(redis_client: redis.Redis) -> None:
    """A web process sees what a worker shared, but only after its memo has lapsed."""
    clock = Clock()
    known = KnownOrganizations(redis_client, memo_sec=30.0, clock=clock)
    before = known.current()
    redis_client.set(ORGANIZATIONS_KEY, "orga_a,orga_b")
    still = known.current()
    clock.now += 30.0

    assert (frozenset(), frozenset(), frozenset({"orga_a", "orga_b"})) == (
        before,
        still,
        known.current(),
    )
