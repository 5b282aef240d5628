"""Order, stale writes, loops, the parking lot and catch-up: real Redis, real RQ workers in
this process, the fake Close."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq import Queue

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event
from service.commands.cli import cli
from service.config.settings import Settings
from service.core.events import Event, event_from_dict
from service.processing import catchup
from service.processing.worker import make_worker

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The same configuration, as the CLI reads it from the environment."""
    return {
        "CLOSE_API_KEY": str(settings.close_api_key),
        "CLOSE_API_URL": settings.close_api_url,
        "REDIS_URL": str(settings.redis_url),
        "DEALKEEPER_RULES": settings.rules_path,
    }


@pytest.fixture
def work(settings: Settings) -> Callable[..., None]:
    def run(**tuning: Any) -> None:
        changed = settings.with_changes(tuning=settings.tuning.__class__(**tuning))
        make_worker(changed).work(burst=True, with_scheduler=False)

    return run


@pytest.fixture
def processed(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """The ids of the events jobs finished, in the order they finished."""
    caplog.set_level(logging.INFO, logger="dealkeeper.jobs")
    finals = {"plan_applied", "plan_skipped", "event_ignored", "opportunity_gone"}
    yield lambda: [
        r.context.get("event_id", "")  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "dealkeeper.jobs" and r.getMessage() in finals
    ]


def queue_raw(raw: dict[str, Any], queue: Queue) -> Event:
    event = event_from_dict(raw)
    enqueue_event(event, queue=queue)
    return event


def puts(fake: FakeClose) -> list[Any]:
    return [r.json for r in fake.requests_matching("PUT")]


def test_reliability_older_events_of_an_opportunity_go_first(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    processed: Callable[[], list[str]],
) -> None:
    """Delivered newest first, one opportunity's events are still processed oldest first;
    the first restores full confidence and the later ones find nothing left to do."""
    won = fake_close.add_opportunity(status_id=fake_close.status_id("Won"), confidence=100)
    events = []
    for minute, confidence in enumerate((50, 40, 30)):
        fake_close.now = WON_AT + timedelta(minutes=minute)
        events.append(fake_close.user_update(won["id"], {"confidence": confidence}))
    for raw in reversed(events):
        assert raw is not None
        queue_raw(raw, queue)

    work()

    assert [e["id"] for e in events if e] == processed()
    assert [{"confidence": 100}] == puts(fake_close)


def test_reliability_old_event_does_not_undo_a_newer_change(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None]
) -> None:
    """Won, then moved back to active: the late 'won' event writes nothing."""
    oppo = fake_close.add_opportunity(confidence=60)
    fake_close.now = WON_AT
    won = fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Won")})
    fake_close.now = WON_AT + timedelta(minutes=1)
    fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Active")})
    assert won is not None

    queue_raw(won, queue)
    work()

    assert [] == puts(fake_close)
    assert 60 == fake_close.opportunity(oppo["id"])["confidence"]


def test_reliability_hand_edited_field_is_not_overwritten(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None]
) -> None:
    """A date_won typed by hand after the event stays; the rest of the plan still goes out."""
    oppo = fake_close.add_opportunity(confidence=60)
    fake_close.now = WON_AT
    won = fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Won")})
    fake_close.now = WON_AT + timedelta(minutes=1)
    fake_close.user_update(oppo["id"], {"date_won": "2026-11-20"})
    assert won is not None

    queue_raw(won, queue)
    work()

    assert [{"confidence": 100}] == puts(fake_close)
    assert "2026-11-20" == fake_close.opportunity(oppo["id"])["date_won"]


@pytest.mark.allow_error_logs
def test_reliability_a_field_flipped_back_again_and_again_is_left_alone(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None], redis_client: redis.Redis
) -> None:
    """Another integration keeps lowering confidence; after 3 writes in an hour dealkeeper
    stops, parks the event and names the field and the rules."""
    won = fake_close.add_opportunity(status_id=fake_close.status_id("Won"), confidence=100)
    for _ in range(4):
        raw = fake_close.user_update(won["id"], {"confidence": 50})
        assert raw is not None
        queue_raw(raw, queue)
        work(loop_max_writes_per_hour=3)

    assert 3 == len(puts(fake_close))
    assert 1 == queue.failed_job_registry.count
    result = CliRunner().invoke(cli, ["failed", "list"], env={"REDIS_URL": _url(redis_client)})
    assert "loop suspected: dealkeeper already wrote confidence of" in result.output
    assert "full-confidence-when-won" in result.output


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


@pytest.fixture
def parked(fake_close: FakeClose, queue: Queue, work: Callable[..., None]) -> str:
    """One event parked because Close refused its update (a choice that does not exist)."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB"]
    )
    oppo = fake_close.add_opportunity(value=500000)
    raw = fake_close.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None
    queue_raw(raw, queue)
    work()
    (job_id,) = queue.failed_job_registry.get_job_ids()
    return str(job_id)


@pytest.mark.allow_error_logs
def test_reliability_failed_list_and_show_say_what_close_answered(
    parked: str, env: dict[str, str]
) -> None:
    """The parking lot lists the event with Close's answer; show adds the whole story."""
    listed = CliRunner().invoke(cli, ["failed", "list"], env=env)
    shown = CliRunner().invoke(cli, ["failed", "show", parked], env=env)

    assert 0 == listed.exit_code
    assert parked in listed.output
    assert "'Enterprise' is not one of the field's choices" in listed.output
    assert listed.output.endswith("1 parked\n")
    assert "Traceback" in shown.output
    assert f"job_id: {parked}" in shown.output


@pytest.mark.allow_error_logs
def test_reliability_failed_retry_requeues_and_counts(
    parked: str, env: dict[str, str], queue: Queue, fake_close: FakeClose
) -> None:
    """retry puts the event back with its retries; an unknown id makes the exit status 1."""
    retried = CliRunner().invoke(cli, ["failed", "retry", parked, "no-such-job"], env=env)

    assert 1 == retried.exit_code
    assert "requeued 1, could not requeue 1" in retried.output
    assert (0, 1) == (queue.failed_job_registry.count, queue.count)


@pytest.mark.allow_error_logs
def test_reliability_failed_retry_all(parked: str, env: dict[str, str], queue: Queue) -> None:
    """retry --all requeues everything parked."""
    again = CliRunner().invoke(cli, ["failed", "retry", "--all"], env=env)

    assert (0, "requeued 1, could not requeue 0\n") == (again.exit_code, again.output)
    assert [parked] == queue.job_ids


@pytest.mark.allow_error_logs
def test_reliability_failed_purge(parked: str, env: dict[str, str], queue: Queue) -> None:
    """purge --yes deletes what is parked, job and all."""
    purged = CliRunner().invoke(cli, ["failed", "purge", "--yes"], env=env)

    assert (0, "purged 1\n") == (purged.exit_code, purged.output)
    assert (0, None) == (queue.failed_job_registry.count, queue.fetch_job(parked))


def test_reliability_catch_up_queues_what_webhooks_did_not_bring(
    fake_close: FakeClose, env: dict[str, str], queue: Queue, work: Callable[..., None]
) -> None:
    """Events that never arrived by webhook are read from the log, queued once, applied."""
    oppo = fake_close.add_opportunity(confidence=60)
    fake_close.now = datetime.now(UTC) - timedelta(minutes=30)
    fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Won")})
    fake_close.now = None

    first = CliRunner().invoke(cli, ["catch-up", "--since", "2h"], env=env)
    second = CliRunner().invoke(cli, ["catch-up", "--since", "2h"], env=env)
    work()

    assert 0 == first.exit_code, first.output
    assert "queued 1, already queued before 0" in first.output
    assert "queued 0, already queued before 1" in second.output
    assert 1 == len(puts(fake_close))


def test_reliability_catch_up_refuses_more_than_the_log_keeps(env: dict[str, str]) -> None:
    """Close keeps 30 days of events; asking for more is a usage error."""
    result = CliRunner().invoke(cli, ["catch-up", "--since", "31d"], env=env)

    assert 2 == result.exit_code
    assert "keeps 30 days" in result.output


def test_reliability_periodic_catch_up_is_scheduled_once_per_period(queue: Queue) -> None:
    """Any number of workers scheduling the next run produce one job for the period."""
    now = 1_800_000_000.0

    ids = [catchup.schedule_next(queue, interval_sec=300, now=now) for _ in range(3)]

    assert [f"catchup-{int(now // 300) + 1}", None, None] == ids
    assert 1 == queue.scheduled_job_registry.count


def test_reliability_maintenance_lock_lapses_within_a_minute(
    queue: Queue, redis_client: redis.Redis
) -> None:
    """A worker killed while cleaning registries blocks the others' recovery of abandoned
    jobs for at most a minute, not RQ's fifteen."""
    assert queue.acquire_maintenance_lock()
    assert not queue.acquire_maintenance_lock()

    assert 0 < redis_client.ttl(queue.registry_cleaning_key) <= 60
