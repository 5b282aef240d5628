"""Close may add keys, actions, object types and status types, write its timestamps another
way, or send null where a value is usual. Whatever a delivery built from Close's documented
example holds, the web answers 2xx or 4xx (never 5xx), and a queued event's job, run by a
real worker against the fake Close, neither crashes nor writes: the test's deal already
satisfies every rule (tests/property/rules/tidy.yaml), so any write would rest on a guess.
An event the worker cannot judge may be parked, with its reason."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import event, given, note
from hypothesis import strategies as st
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from fakeclose import FakeClose
from fakeclose.store import ORGANIZATION_ID
from service.adapters.embedded import RedisServer
from service.adapters.parked import reason_of
from service.config.settings import Settings
from service.intake import signatures
from service.intake.app import create_app
from service.processing.worker import DealkeeperWorker, make_worker
from tests.property import documented
from tests.property.variations import apply_edit, deliveries

KEY = bytes.fromhex("11" * 32)
RULES = Path(__file__).parent / "rules"
# Parked with a reason a person can act on: the event cannot be judged as it came.
REASONED_FAILURES = ("EnvelopeError",)


class World:
    """One fake Close, Redis, web app and worker for every example of a test. (Not a
    dataclass: hypothesis would print every field of it in a failure report.)"""

    def __init__(
        self,
        fake: FakeClose,
        connection: redis.Redis,
        web: FlaskClient,
        worker: DealkeeperWorker,
        base: dict[str, Any],
    ) -> None:
        self.fake, self.redis, self.web, self.worker = fake, connection, web, worker
        self.base = base  # the documented delivery, about the fake's tidy deal
        self.failures: list[logging.LogRecord] = []

    def __repr__(self) -> str:
        return "World(...)"


class _Failures(logging.Handler):
    """The lines a crash leaves: a job's `event_failed` or the web's `request_failed`."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() in ("event_failed", "request_failed"):
            self.into.append(record)


@pytest.fixture(scope="module")
def world(redis_server: RedisServer) -> Iterator[World]:
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    with FakeClose() as fake:
        segment = fake.add_custom_field(
            "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
        )
        deal = fake.add_opportunity(
            status_id=fake.status_id("Active"),
            confidence=50,
            value=500,
            note="kept tidy",
            **{f"custom.{segment}": ["SMB"]},
        )
        settings = Settings(
            close_api_key=FakeClose.DEFAULT_API_KEY,
            close_api_url=fake.url,
            redis_url=redis_server.url,
            rules_path=str(RULES),
            webhook_secrets=(KEY,),
        )
        app = create_app(settings)
        ids = documented.Deal(
            opportunity_id=deal["id"],
            status_id=fake.status_id("Won"),
            pipeline_id=fake.default_pipeline_id,
            lead_id=deal["lead_id"],
            organization_id=ORGANIZATION_ID,
            custom={f"custom.{segment}": ["SMB"]},
        )
        base = documented.delivery(documented.won_event(ids))
        world = World(fake, connection, app.test_client(), make_worker(settings), base)
        handler = _Failures(world.failures)
        logging.getLogger("dealkeeper").addHandler(handler)
        try:
            yield world
        finally:
            logging.getLogger("dealkeeper").removeHandler(handler)
            app.extensions["dealkeeper"].connection.close()
            connection.flushall()
            connection.close()


def deliver(web: FlaskClient, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    headers = signatures.signed_headers(raw, key=KEY, timestamp=int(time.time()))
    return web.post(
        "/webhooks/close", data=raw, headers={**headers, "content-type": "application/json"}
    )


def writes(fake: FakeClose) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.json) for r in fake.requests if r.method != "GET"]


def run_job(world: World, job_id: str) -> None:
    """The real worker performs the queued job as its work loop would, without the loop's
    start and stop (a second each, for the command listener's poll)."""
    queue = world.worker.queues[0]
    job = Job.fetch(job_id, connection=world.redis, serializer=JSONSerializer)
    queue.remove(job_id)
    world.worker.execute_job(job, queue)


def job_end(world: World, job_id: str) -> tuple[str, str]:
    """How the job ended: its status, and for a failed job its reason. A finished event
    keeps nothing of its job in Redis (docs/redis.md)."""
    try:
        job = Job.fetch(job_id, connection=world.redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return "finished", ""
    status = job.get_status(refresh=True)
    if status != JobStatus.FAILED:
        return str(status), ""
    return str(status), reason_of(job)


@pytest.mark.allow_error_logs  # a parked event is logged at ERROR (job_parked)
@pytest.mark.timeout(120)
@given(data=st.data())
def test_varied_deliveries_are_answered_and_never_written_on_a_guess(
    world: World, data: st.DataObject
) -> None:
    world.redis.flushall()  # a fresh dedupe: every example's delivery is a first one
    world.fake.clear_requests()
    world.failures.clear()
    body, edits = data.draw(deliveries(world.base), label="delivery")
    note(f"edits: {edits}")

    answer = deliver(world.web, body)
    event(f"answered {answer.status_code}")  # --hypothesis-show-statistics shows the mix
    assert answer.status_code < 500, answer.json
    if answer.status_code == 202:
        run_job(world, answer.json["job_id"])
        status, reason = job_end(world, answer.json["job_id"])
        assert status == "finished" or any(f in reason for f in REASONED_FAILURES), reason

    assert [] == [r.getMessage() for r in world.failures]
    assert [] == writes(world.fake)


def test_the_documented_delivery_itself_is_queued_and_changes_nothing(world: World) -> None:
    """The unedited example: queued, judged, nothing to write (the deal is tidy)."""
    world.redis.flushall()
    world.fake.clear_requests()

    answer = deliver(world.web, world.base)
    world.worker.work(burst=True, with_scheduler=False)

    assert (202, "finished") == (answer.status_code, job_end(world, answer.json["job_id"])[0])
    assert [] == writes(world.fake)


def edited(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    apply_edit(body, ("set", path, value))
    return body


# What Close may change, one change each: the answer, and the line that says what was done.
CHANGES = {
    "a new action": (("event", "action"), "merged", 202, "plan_skipped"),
    "a new object type": (("event", "object_type"), "opportunity_note", 200, "webhook_ignored"),
    "a new status type": (("event", "data", "status_type"), "paused", 202, "plan_skipped"),
    "a null status type": (("event", "data", "status_type"), None, 202, "plan_skipped"),
    "a null value": (("event", "data", "value"), None, 202, "plan_skipped"),
    "a null confidence": (("event", "data", "confidence"), None, 202, "plan_skipped"),
    "null changed_fields": (("event", "changed_fields"), None, 202, "plan_skipped"),
    "a null meta": (("event", "meta"), None, 202, "plan_skipped"),
    "an unknown key in data": (("event", "data", "ai_summary"), {"x": [1]}, 202, "plan_skipped"),
    "an unknown key in the event": (
        ("event", "oauth_scope"),
        "all.full_access",
        202,
        "plan_skipped",
    ),
    "an unknown top-level key": (("delivery_attempt",), 3, 202, "plan_skipped"),
    "date_updated without fractions": (
        ("event", "date_updated"),
        "2019-01-15T12:48:24",
        202,
        "plan_skipped",
    ),
    "date_updated with an offset": (
        ("event", "date_updated"),
        "2019-01-15T13:48:24.5+01:00",
        202,
        "plan_skipped",
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_close_may_make_is_answered_and_logged_without_a_write(
    world: World, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dealkeeper")
    path, value, status, line = CHANGES[change]
    world.redis.flushall()
    world.fake.clear_requests()

    answer = deliver(world.web, edited(world.base, path, value))
    if answer.status_code == 202:
        run_job(world, answer.json["job_id"])
        assert ("finished", "") == job_end(world, answer.json["job_id"])

    assert status == answer.status_code
    assert line in [r.getMessage() for r in caplog.records]
    assert [] == writes(world.fake)
