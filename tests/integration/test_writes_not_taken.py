"""A write Close answers 200 without taking every field is not reported as applied: jobs
against a real Redis, a real RQ worker and the fake Close, which drops keys as Close does."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq import Queue

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event
from service.adapters.stats import Stats
from service.commands.cli import cli
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.processing.worker import make_worker

LOST_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
# date_lost appears in Close's answers only: no PUT of Close's documents it (the fake, like
# Close's validation, ignores it). confidence is taken.
LOST_RULES = """\
rules:
  - name: lost-deals-get-date-lost
    trigger: opportunity.updated
    if:
      - status_type: {changed_to: lost}
    then:
      - set: {date_lost: "2026-11-28T03:30:00+00:00", confidence: 0}
"""


@pytest.fixture
def work(settings: Settings) -> Callable[..., None]:
    """Run a burst worker over whatever is queued, with the given settings changes."""

    def run(**changes: Any) -> None:
        make_worker(settings.with_changes(**changes)).work(burst=True, with_scheduler=False)

    return run


def moved_to(fake: FakeClose, label: str) -> dict[str, Any]:
    """A person moves a fresh opportunity to `label` at LOST_AT; returns Close's event."""
    oppo = fake.add_opportunity(confidence=60)
    fake.now = LOST_AT
    event = fake.user_update(oppo["id"], {"status_id": fake.status_id(label)})
    assert event is not None
    return event


def not_taken_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, Any]]:
    return [
        (r.levelno, getattr(r, "fields"))  # noqa: B009 - set through `extra=`
        for r in caplog.records
        if r.getMessage() == "write_not_taken"
    ]


def counters(connection: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, s.labels): s.value for s in Stats(connection).samples()}


def test_write_close_did_not_take_is_a_warning_in_history_and_metrics(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """A rule writes date_lost, which Close answers 200 without taking: the job logs
    write_not_taken at WARNING with the field, history shows it, a counter counts it."""
    rules = tmp_path / "lost.yaml"
    rules.write_text(LOST_RULES, encoding="utf-8")
    caplog.set_level(logging.INFO)
    raw = moved_to(fake_close, "Lost")
    enqueue_event(event_from_dict(raw), queue=queue)

    work(rules_path=str(rules))

    shown = CliRunner().invoke(cli, ["history", raw["object_id"]], env={"REDIS_URL": redis_url})
    found = counters(redis_client)
    assert [(logging.WARNING, ["date_lost"])] == not_taken_lines(caplog)
    assert 0 == fake_close.opportunity(raw["object_id"])["confidence"]
    assert (1.0, 1.0, None) == (
        found.get(("writes_not_taken_total", ())),
        found.get(("events_total", (("outcome", "not_taken"),))),
        found.get(("events_total", (("outcome", "applied"),))),
    )
    assert "not_taken" in shown.output.splitlines()[1]
    assert "    Close answered 200 without taking: date_lost" in shown.output.splitlines()


def test_echo_of_a_write_close_took_in_part_is_recognised_as_ours(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Our receipt keeps only what Close took: the echo of a won deal's write, where Close
    dropped confidence, is our own change, not a new reason to write again."""
    fake_close.ignore_writes_to({"confidence"})
    caplog.set_level(logging.INFO)
    raw = moved_to(fake_close, "Won")
    enqueue_event(event_from_dict(raw), queue=queue)
    work()
    echo = fake_close.events[-1]
    assert ["date_updated", "date_won"] == echo["changed_fields"]

    enqueue_event(event_from_dict(echo), queue=queue)
    work()

    assert [(logging.WARNING, ["confidence"])] == not_taken_lines(caplog)
    assert 1 == len(fake_close.requests_matching("PUT"))
    assert ["event_ignored"] == [
        r.getMessage() for r in caplog.records if r.getMessage() == "event_ignored"
    ]
