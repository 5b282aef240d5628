"""The overview page over what real jobs recorded: events by outcome per hour, rules by
firing, the queue, and a rejected rules file's problems."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from fakeclose import FakeClose
from service.adapters.activity import ACTIVITY_KEEP_SEC, ACTIVITY_PREFIX, Activity, hour_of
from service.adapters.queue import enqueue_event
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.processing.worker import make_worker
from tests.consoleclient import (
    ADMIN_PASSWORD,
    READ_PASSWORD,
    WEBHOOK_KEY,
    console_client,
    sign_in,
)

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)


@pytest.fixture
def work(settings: Settings) -> Callable[[], None]:
    def run() -> None:
        make_worker(settings).work(burst=True, with_scheduler=False)

    return run


def won(fake: FakeClose, queue: Queue) -> str:
    oppo = fake.add_opportunity(confidence=60)
    fake.now = WON_AT
    raw = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
    assert raw is not None
    enqueue_event(event_from_dict(raw), queue=queue)
    return str(oppo["id"])


def console_of(settings: Settings, **changes: Any) -> Any:
    return console_client(
        settings.with_changes(
            console_password=READ_PASSWORD,
            console_admin_password=ADMIN_PASSWORD,
            webhook_secrets=(WEBHOOK_KEY,),
            **changes,
        )
    )


def test_finished_jobs_are_counted_per_hour_by_outcome_and_rule(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[[], None],
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    deals = [won(fake_close, queue) for _ in range(3)]
    work()
    activity = Activity(redis_client)
    ((_, counts),) = activity.hours(1)
    assert 3 == counts["outcome:applied"]
    assert 3 == counts["rule:stamp-date-won"]
    assert {"stamp-date-won": 3, "full-confidence-when-won": 3} == {
        k: v for k, v in activity.rule_counts(24).items() if v
    }
    assert activity.last_fired()["stamp-date-won"].opportunity_id in deals
    key = f"{ACTIVITY_PREFIX}{hour_of(datetime.now(UTC).timestamp())}"
    assert 0 < redis_client.ttl(key) <= ACTIVITY_KEEP_SEC


def test_the_overview_draws_the_hours_outcomes(
    fake_close: FakeClose, queue: Queue, work: Callable[[], None], settings: Settings
) -> None:
    for _ in range(2):
        won(fake_close, queue)
    work()
    client = console_of(settings)
    sign_in(client)
    page = client.get("/console/").text
    assert re.search(r"<title>\d\d:00: 2 applied</title>", page), page[-3000:]
    assert 'id="workers">0<' in page  # a burst worker has gone
    assert "applied 2" in page


def test_counts_fall_in_the_hour_they_were_made(redis_client: redis.Redis) -> None:
    moments = iter([10 * 3600 - 1.0, 10 * 3600 + 1.0, 10 * 3600 + 2.0])
    clock = [0.0]
    activity = Activity(redis_client, clock=lambda: clock[0])

    def finish(rule: str) -> None:
        clock[0] = next(moments)
        pipe = redis_client.pipeline()
        plan = type("Plan", (), {"fired": (rule,)})()
        event = type("Event", (), {"object_id": "oppo_1", "id": "ev_1"})()
        activity.record_finished(pipe, event, plan, {"outcome": "applied"})
        pipe.execute()

    finish("a")
    finish("b")
    finish("b")
    assert {"b": 2} == activity.rule_counts(1)
    assert {"a": 1, "b": 2} == activity.rule_counts(2)
    assert [9, 10] == [hour for hour, _ in activity.hours(2)]


@pytest.mark.allow_error_logs  # the web process logs the rejected file at ERROR, as it should
def test_the_overview_shows_why_a_newer_rules_file_was_rejected(
    settings: Settings, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: x\n    trigger: opportunity.updated\n    then: [{sett: {}}]\n"
    )
    client = console_of(settings, rules_path=str(rules))
    sign_in(client)
    page = client.get("/console/").text
    assert "was rejected" in page
    assert re.search(r"rules\.yaml:4:\d+: ", page), page
