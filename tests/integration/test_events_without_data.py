"""Events without their data: Close's event log shows a non-admin API key an event's data
only for an hour. Catch-up leaves an older event read without it for Close's webhook
retries (not queued, not recorded as seen, counted and reported), and nothing else judges
such an event as if it were about an empty opportunity."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from flask.testing import FlaskClient

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event, make_queue
from service.commands.cli import cli
from service.config.settings import Settings
from service.core.events import EnvelopeError, event_from_dict
from service.intake import signatures
from service.intake.app import create_app
from service.observability.logs import record_fields
from service.processing import catchup
from service.processing.worker import make_worker

KEY = bytes.fromhex("11" * 32)


@pytest.fixture
def fake_close() -> Iterator[FakeClose]:
    """The fake Close, its API key a non-admin's."""
    with FakeClose(admin=False) as fake:
        yield fake


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "CLOSE_API_KEY": str(settings.close_api_key),
        "CLOSE_API_URL": settings.close_api_url,
        "REDIS_URL": str(settings.redis_url),
        "DEALKEEPER_RULES": settings.rules_path,
    }


@pytest.fixture
def web(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings.with_changes(webhook_secrets=(KEY,)))
    yield app.test_client()
    app.extensions["dealkeeper"].connection.close()


@pytest.fixture
def work(settings: Settings) -> Callable[[], bool]:
    return lambda: make_worker(settings).work(burst=True, with_scheduler=False)


def deliver(web: FlaskClient, event: dict[str, Any]) -> Any:
    """Close's webhook of `event`, signed now (a retry of a failed delivery)."""
    body = json.dumps({"subscription_id": "whsub_1", "event": event}).encode()
    headers = signatures.signed_headers(body, key=KEY, timestamp=int(time.time()))
    return web.post(
        "/webhooks/close", data=body, headers={**headers, "content-type": "application/json"}
    )


def won_hours_ago(fake: FakeClose, hours: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """A person moved a deal to Won `hours` ago: the opportunity and the event (as Close's
    webhook carries it, with its data)."""
    oppo = fake.add_opportunity(confidence=60)
    fake.now = datetime.now(UTC) - timedelta(hours=hours)
    event = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
    fake.now = None
    assert event is not None
    return oppo, event


def test_catch_up_leaves_an_event_without_data_for_the_webhook_retry(
    fake_close: FakeClose,
    env: dict[str, str],
    web: FlaskClient,
    work: Callable[[], bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Dealkeeper was down two hours: catch-up with a non-admin key reads the Won event
    without its data and leaves it; Close's retry of the webhook is then queued and applied,
    not refused as a duplicate."""
    caplog.set_level(logging.INFO, logger="dealkeeper.catchup")
    oppo, event = won_hours_ago(fake_close, 2)

    caught_up = CliRunner().invoke(cli, ["catch-up", "--since", "3h"], env=env)
    retried = deliver(web, event)
    work()

    assert (202, "queued") == (retried.status_code, retried.json["status"])
    assert 100 == fake_close.opportunity(oppo["id"])["confidence"]
    assert 0 == caught_up.exit_code, caught_up.output
    assert "queued 0, already queued before 0, skipped 0, no payload (non-admin key) 1" in (
        caught_up.output
    )
    [warning] = [r for r in caplog.records if r.getMessage() == "catch_up_events_without_data"]
    fields = record_fields(warning)
    assert (logging.WARNING, 1, [event["id"]]) == (
        warning.levelno,
        fields["count"],
        fields["event_ids"],
    )
    assert "catch-up needs an admin's API key" in fields["advice"]


def test_catch_up_still_queues_events_less_than_an_hour_old(
    fake_close: FakeClose, env: dict[str, str], work: Callable[[], bool]
) -> None:
    """Within the hour a non-admin key reads the data: the event is queued and applied."""
    oppo, _ = won_hours_ago(fake_close, 0.5)

    caught_up = CliRunner().invoke(cli, ["catch-up", "--since", "3h"], env=env)
    work()

    assert "queued 1, already queued before 0, skipped 0, no payload (non-admin key) 0" in (
        caught_up.output
    )
    assert 100 == fake_close.opportunity(oppo["id"])["confidence"]


def test_catch_up_counts_an_event_without_data_already_delivered_as_a_duplicate(
    fake_close: FakeClose, env: dict[str, str], web: FlaskClient, redis_client: redis.Redis
) -> None:
    """An event the webhook brought before is not at risk: a duplicate, with no advice."""
    _, event = won_hours_ago(fake_close, 2)
    deliver(web, event)

    caught_up = CliRunner().invoke(cli, ["catch-up", "--since", "3h"], env=env)

    assert "queued 0, already queued before 1, skipped 0, no payload (non-admin key) 0" in (
        caught_up.output
    )
    assert 1 == len(caught_up.output.splitlines())  # and no advice


def test_status_shows_the_last_scheduled_catch_up_without_data(
    fake_close: FakeClose, settings: Settings, env: dict[str, str]
) -> None:
    """The automatic catch-up keeps its count of events without data; `dealkeeper status`
    shows it with what to do."""
    won_hours_ago(fake_close, 0.9)  # read within the first run's hour-long look-back...
    fake_close.now = datetime.now(UTC) + timedelta(minutes=10)  # ...when it is over an hour old
    make_worker(settings)  # installs the job context the scheduled run uses

    result = catchup.scheduled_catch_up()
    status = CliRunner().invoke(cli, ["status"], env=env)
    data = json.loads(CliRunner().invoke(cli, ["status", "--json"], env=env).output)

    assert 1 == result["no_payload"]
    assert (
        "last catch-up found 1 event(s) without their data (a non-admin API key reads an "
        "event's data only for an hour): they were left for Close's webhook retries; give "
        "catch-up an admin's API key, or run a sweep to recover a longer outage"
    ) in status.output
    assert (1, 0) == (data["last_catch_up"]["no_payload"], data["last_catch_up"]["queued"])


def without_data(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a non-admin key reads it from the log once it is over an hour old."""
    return {**event, "data": None, "previous_data": None}


def test_webhook_without_its_data_is_refused_and_leaves_no_trace(
    fake_close: FakeClose, web: FlaskClient, redis_client: redis.Redis
) -> None:
    """Close's webhooks carry the opportunity: one without it is a 400 that says why, and
    nothing is queued or recorded as seen."""
    _, event = won_hours_ago(fake_close, 0)

    response = deliver(web, without_data(event))

    reason = "not a Close event: event.data is null or missing; opportunity.updated carries"
    assert (400, f"{reason} the opportunity") == (response.status_code, response.json["error"])
    assert [] == redis_client.keys("dk:seen:*")


def test_webhook_of_a_deletion_carries_only_previous_data(
    fake_close: FakeClose, web: FlaskClient
) -> None:
    """A deleted opportunity's event has data null and the object in previous_data: queued."""
    deleted = fake_close.user_delete(fake_close.add_opportunity()["id"])

    response = deliver(web, deleted)

    assert (None, 202) == (deleted["data"], response.status_code)


def test_an_event_without_its_data_is_never_queued(
    fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """The queue itself refuses it, so no path can write its dedupe record."""
    _, event = won_hours_ago(fake_close, 2)
    queue = make_queue(redis_client)

    with pytest.raises(EnvelopeError) as caught:
        enqueue_event(event_from_dict(without_data(event)), queue=queue)

    assert f"event {event['id']} came without its data (" in str(caught.value)
    assert (0, []) == (queue.count, redis_client.keys("dk:seen:*"))


@pytest.mark.allow_error_logs
def test_a_job_without_its_data_is_parked_not_judged(
    fake_close: FakeClose, redis_client: redis.Redis, work: Callable[[], bool]
) -> None:
    """A job carrying an event without its data (queued by hand, or by an older release) is
    parked for a person to look at; the rules never see an empty opportunity."""
    oppo, event = won_hours_ago(fake_close, 2)
    queue = make_queue(redis_client)
    queue.enqueue_call("service.processing.jobs.process_event", args=(without_data(event),))

    work()

    assert (1, 60) == (
        queue.failed_job_registry.count,
        fake_close.opportunity(oppo["id"])["confidence"],
    )


def test_explain_refuses_an_event_read_without_its_data(
    fake_close: FakeClose, env: dict[str, str]
) -> None:
    """explain --event-id with a non-admin key, over an hour later: a clear error and what
    to do instead, not an explanation of an empty opportunity."""
    oppo, event = won_hours_ago(fake_close, 2)

    result = CliRunner().invoke(cli, ["explain", "--event-id", event["id"]], env=env)

    assert (1, [
        f"Error: event {event['id']} came without its data: Close's event log shows it to a "
        "non-admin API key only for an hour. Read it with an admin's API key, or use "
        f"--opportunity {oppo['id']} to explain the opportunity as it is now"
    ]) == (result.exit_code, result.output.splitlines())  # fmt: skip
