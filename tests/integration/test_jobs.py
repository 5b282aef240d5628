"""Jobs end to end inside one process: real Redis, real RQ SimpleWorker, the fake Close."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from fakeclose import FakeClose
from fakeclose.store import ORGANIZATION_ID
from service.adapters.close import CloseClient
from service.adapters.history import History
from service.adapters.locks import LOCK_PREFIX, OpportunityLock
from service.adapters.metadata import MetadataCache
from service.adapters.organization import ORGANIZATIONS_KEY, ORGANIZATIONS_TTL_SEC
from service.adapters.parked import reason_of
from service.adapters.queue import enqueue_event, job_id_for
from service.config.defaults import CLOSE_MAX_ATTEMPTS
from service.config.settings import Settings
from service.core.events import Event, event_from_dict
from service.core.rules.evaluation.texts import MAX_TEXT_CHARS
from service.observability.logs import record_fields
from service.processing import jobs
from service.processing.worker import make_worker

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)  # 22:30 on the 27th in New York


@pytest.fixture
def segment(fake_close: FakeClose) -> str:
    return fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )


@pytest.fixture
def work(settings: Settings) -> Callable[..., None]:
    """Run a burst worker over whatever is queued, with the given settings changes."""

    def run(**changes: Any) -> None:
        worker = make_worker(settings.with_changes(**changes))
        worker.work(burst=True, with_scheduler=False)

    return run


def won_event(fake: FakeClose, **fields: Any) -> dict[str, Any]:
    """A person moves a fresh opportunity to Won at WON_AT; returns Close's event."""
    oppo = fake.add_opportunity(confidence=60, **fields)
    fake.now = WON_AT
    event = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
    assert event is not None
    return event


def plan_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The jobs' one line each, for events whose plan was applied (or logged, dry)."""
    return [r for r in caplog.records if r.getMessage() == "plan_applied"]


def queue_event(raw: dict[str, Any], queue: Queue) -> Event:
    event = event_from_dict(raw)
    enqueue_event(event, queue=queue)
    return event


def puts(fake: FakeClose) -> list[Any]:
    return [(r.path, r.json, r.headers.get("x-tz-offset")) for r in fake.requests_matching("PUT")]


def test_jobs_won_deal_gets_new_york_date_and_full_confidence(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None], segment: str
) -> None:
    """Moved to won at 22:30 New York time: one PUT with the 27th, confidence 100, offset -5."""
    raw = won_event(fake_close)
    oppo_id = raw["object_id"]

    queue_event(raw, queue)
    work()

    assert [
        (f"opportunity/{oppo_id}/", {"date_won": "2026-11-27", "confidence": 100}, "-5")
    ] == puts(fake_close)
    state = fake_close.opportunity(oppo_id)
    assert ("2026-11-27", 100) == (state["date_won"], state["confidence"])


def test_jobs_custom_field_named_in_rules_is_written_by_id(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None], segment: str
) -> None:
    """`add: {custom.Segment: Enterprise}` goes out as Close's `custom.cf_....add`."""
    oppo = fake_close.add_opportunity(value=500000, **{f"custom.{segment}": ["SMB"]})
    raw = fake_close.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None

    queue_event(raw, queue)
    work()

    assert [(f"opportunity/{oppo['id']}/", {f"custom.{segment}.add": "Enterprise"}, "-5")] == puts(
        fake_close
    )
    assert ["SMB", "Enterprise"] == fake_close.opportunity(oppo["id"])[f"custom.{segment}"]


def test_jobs_plan_that_changes_nothing_makes_no_call(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None], segment: str
) -> None:
    """A small deal's value change fires nothing: metadata is read, nothing is written."""
    oppo = fake_close.add_opportunity(value=1000)
    raw = fake_close.user_update(oppo["id"], {"value": 2000})
    assert raw is not None

    queue_event(raw, queue)
    work()

    assert [] == puts(fake_close)


def test_jobs_echo_of_our_own_write_is_ignored_and_teaches_our_key(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    segment: str,
    redis_client: redis.Redis,
) -> None:
    """The event our PUT causes changes nothing, and its api_key_id is remembered as ours."""
    queue_event(won_event(fake_close), queue)
    work()
    echo = fake_close.events[-1]
    assert FakeClose.DEFAULT_API_KEY_ID == echo["api_key_id"]

    queue_event(echo, queue)
    work()

    assert 1 == len(puts(fake_close))
    assert {FakeClose.DEFAULT_API_KEY_ID.encode()} == redis_client.smembers("dk:own:api_key_ids")


def test_jobs_event_of_a_deleted_opportunity_is_dropped(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None], segment: str
) -> None:
    """Close answers 404: the job ends without a retry, nothing is parked (RQ keeps
    nothing of a finished job: its outcome is in the history)."""
    raw = won_event(fake_close)
    fake_close.user_delete(raw["object_id"])

    queue_event(raw, queue)
    work()

    (entry,) = History(queue.connection).for_opportunity(raw["object_id"])
    assert ("opportunity_gone", 404) == (entry.outcome, entry.close_status)
    assert (0, []) == (queue.failed_job_registry.count, queue.connection.keys("rq:job:*"))


def fetch(queue: Queue, job_id: str) -> Job:
    return Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)


@pytest.mark.allow_error_logs
def test_jobs_permanent_close_error_is_parked_at_once_with_closes_answer(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None]
) -> None:
    """A 400 is not retried: the job goes to the failed registry carrying Close's field error."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB"]
    )
    oppo = fake_close.add_opportunity(value=500000)
    raw = fake_close.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None

    queue_event(raw, queue)
    work()

    assert (1, 0) == (queue.failed_job_registry.count, queue.scheduled_job_registry.count)
    job = fetch(queue, queue.failed_job_registry.get_job_ids()[0])
    exc_string = reason_of(job)  # kept in the job's hash (service/adapters/parked.py)
    assert "400 Bad Request for PUT" in exc_string
    assert "'Enterprise' is not one of the field's choices" in exc_string
    assert 1 == len(puts(fake_close))


@pytest.mark.allow_error_logs
def test_jobs_transient_close_error_is_scheduled_for_retry(
    fake_close: FakeClose, queue: Queue, settings: Settings, segment: str
) -> None:
    """503s beyond the client's own attempts put the job back on the schedule, not in failed."""
    fake_close.fail_next(10, status=503, method="PUT")
    queue_event(won_event(fake_close), queue)
    worker = make_worker(settings)
    jobs.installed().close = CloseClient(
        FakeClose.DEFAULT_API_KEY, base_url=fake_close.url, backoff_base_sec=0.01
    )

    worker.work(burst=True, with_scheduler=False)

    assert (0, 1) == (queue.failed_job_registry.count, queue.scheduled_job_registry.count)
    job = fetch(queue, queue.scheduled_job_registry.get_job_ids()[0])
    assert 7 == job.retries_left


def test_jobs_long_rate_limit_reschedules_instead_of_waiting(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None], segment: str
) -> None:
    """A 429 asking for 30 s does not hold the worker: the job is scheduled for later."""
    fake_close.fail_next(1, status=429, method="PUT", headers={"retry-after": "30"})
    queue_event(won_event(fake_close), queue)

    work()

    assert 1 == queue.scheduled_job_registry.count
    assert 1 == len(puts(fake_close))


def test_jobs_busy_opportunity_is_rescheduled(
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    segment: str,
    redis_client: redis.Redis,
) -> None:
    """While another worker holds the opportunity, the event waits its turn."""
    raw = won_event(fake_close)
    queue_event(raw, queue)

    worker = make_worker(settings)
    jobs.installed().lock_wait_sec = 0.05

    other = OpportunityLock(redis_client, raw["object_id"], ttl_sec=60, wait_sec=0)
    other.acquire()
    try:
        worker.work(burst=True, with_scheduler=False)
    finally:
        other.release()

    assert (1, []) == (queue.scheduled_job_registry.count, puts(fake_close))


def test_jobs_newer_event_waits_for_an_older_one_still_queued(
    fake_close: FakeClose, queue: Queue, settings: Settings, redis_client: redis.Redis
) -> None:
    """Queued ahead of an older event of its opportunity, an event is sent back to wait its
    turn, nothing written; the lock it took to look is given back at once."""
    older = won_event(fake_close)
    newer = {**older, "id": older["id"] + "_2", "date_created": "2026-11-28T03:31:00.000000"}
    newer_event = queue_event(newer, queue)
    queue_event(older, queue)

    make_worker(settings).work(burst=True, with_scheduler=False, max_jobs=1)

    job = Job.fetch(job_id_for(newer_event), connection=redis_client, serializer=JSONSerializer)
    assert (JobStatus.QUEUED, [], 0) == (
        job.get_status(),
        puts(fake_close),
        redis_client.exists(LOCK_PREFIX + older["object_id"]),
    )


def test_jobs_dry_run_calls_nothing(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without an API key nothing reaches Close; the plan is logged instead."""
    caplog.set_level(logging.INFO)
    queue_event(won_event(fake_close), queue)

    work(close_api_key=None)

    assert [] == fake_close.requests
    (line,) = plan_lines(caplog)
    assert (True, {"date_won": "2026-11-27", "confidence": 100}) == (
        getattr(line, "dry_run"),  # noqa: B009 - set through `extra=`, unknown to the type
        getattr(line, "update"),  # noqa: B009
    )


def test_jobs_log_line_of_an_applied_event_carries_closes_answer(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The one line per job says what Close answered the PUT; a dry run sent nothing."""
    caplog.set_level(logging.INFO)
    queue_event(won_event(fake_close), queue)
    work()
    queue_event(won_event(fake_close), queue)
    work(close_api_key=None)

    lines = plan_lines(caplog)
    assert [(False, 200), (True, None)] == [
        (getattr(r, "dry_run"), getattr(r, "close_status", None))  # noqa: B009 - from `extra=`
        for r in lines
    ]


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_jobs_log_line_counts_rules_not_fired_and_spells_them_out_at_debug(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
    level: int,
) -> None:
    """With many rules every reason would swamp the line: INFO counts, DEBUG explains."""
    caplog.set_level(level)
    queue_event(won_event(fake_close), queue)

    work(close_api_key=None)

    (line,) = plan_lines(caplog)
    not_fired = getattr(line, "not_fired")  # noqa: B009 - set through `extra=`
    if level == logging.INFO:
        assert isinstance(not_fired, int) and not_fired > 0
    else:
        assert isinstance(not_fired, dict) and not_fired
        assert all(isinstance(reason, str) and reason for reason in not_fired.values())


def test_jobs_text_cut_for_the_rules_is_logged_with_its_lengths_only(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A value longer than rules read is logged as value_truncated, with its field and
    lengths; the text itself (it may be personal data) is in no line."""
    caplog.set_level(logging.INFO)
    note = "Personal " * (MAX_TEXT_CHARS // 9 + 1)
    queue_event(won_event(fake_close, note=note), queue)

    work(close_api_key=None)

    cut = [r for r in caplog.records if r.getMessage() == "value_truncated"]
    assert [(logging.WARNING, "note", len(note), MAX_TEXT_CHARS, False)] == [
        (r.levelno, *(getattr(r, k) for k in ("field", "length", "kept", "previous"))) for r in cut
    ]
    assert [] == [r.getMessage() for r in caplog.records if "Personal" in str(vars(r))]


def test_jobs_unknown_custom_field_name_refetches_metadata_once(
    fake_close: FakeClose, queue: Queue, settings: Settings
) -> None:
    """A name Close did not know at the first look is looked up again before giving up."""
    oppo = fake_close.add_opportunity(value=500000)
    raw = fake_close.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None
    queue_event(raw, queue)
    worker = make_worker(settings)
    context = jobs.installed()
    context.metadata = MetadataCache(context.close, min_refresh_interval_sec=0)
    context.metadata.get()  # cached before the field exists
    segment = fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["Enterprise"]
    )

    worker.work(burst=True, with_scheduler=False)

    assert [(f"opportunity/{oppo['id']}/", {f"custom.{segment}.add": "Enterprise"}, "-5")] == puts(
        fake_close
    )


@pytest.mark.allow_error_logs  # the parked event
def test_jobs_parked_or_retrying_older_events_do_not_hold_back_a_newer_one(
    fake_close: FakeClose, queue: Queue, settings: Settings, segment: str
) -> None:
    """An older event Close refused (parked) and one waiting for a retry after 503s stay
    listed for their deal; the newer event must still be applied at once, not wait behind
    them (the re-read keeps a later retry of theirs from undoing it)."""
    parked = won_event(fake_close)
    retrying = {**parked, "id": parked["id"] + "_2", "date_created": "2026-11-28T03:30:30.000000"}
    newer = {**parked, "id": parked["id"] + "_3", "date_created": "2026-11-28T03:31:00.000000"}
    for raw in (parked, retrying, newer):
        queue_event(raw, queue)
    fake_close.fail_next(1, status=400, method="PUT", body={"error": "refused"})
    fake_close.fail_next(CLOSE_MAX_ATTEMPTS, status=503, method="PUT")
    worker = make_worker(settings)
    jobs.installed().close = CloseClient(
        FakeClose.DEFAULT_API_KEY, base_url=fake_close.url, backoff_base_sec=0.01
    )

    worker.work(burst=True, with_scheduler=False)

    assert (1, 1) == (queue.failed_job_registry.count, queue.scheduled_job_registry.count)
    state = fake_close.opportunity(parked["object_id"])
    assert ("2026-11-27", 100) == (state["date_won"], state["confidence"])


def test_jobs_add_whose_answer_is_lost_is_applied_once(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    segment: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Close takes the `.add` and a gateway loses its answer (504): the job reads the deal
    again instead of repeating the `.add`, ends applied, and nothing is parked or retried."""
    caplog.set_level(logging.INFO)
    oppo = fake_close.add_opportunity(value=500000, **{f"custom.{segment}": ["SMB"]})
    raw = fake_close.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None
    fake_close.fail_next(1, status=504, method="PUT", after_serving=True)

    queue_event(raw, queue)
    work()

    sent = [(r.method, r.json) for r in fake_close.requests_matching(path_prefix="opportunity/")]
    assert (
        [("GET", None), ("PUT", {f"custom.{segment}.add": "Enterprise"}), ("GET", None)],
        ["SMB", "Enterprise"],
        (0, 0),
        ["applied"],
    ) == (
        sent,
        fake_close.opportunity(oppo["id"])[f"custom.{segment}"],
        (queue.failed_job_registry.count, queue.scheduled_job_registry.count),
        [getattr(line, "outcome") for line in plan_lines(caplog)],  # noqa: B009 - set through `extra=`
    )


def test_jobs_event_of_another_organization_is_dropped_unread(
    fake_close: FakeClose,
    queue: Queue,
    work: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event queued before the web knew the organization (or by catch-up) about another
    organization is dropped with a warning: the deal is not read, nothing is written, and
    the job is neither parked nor retried."""
    raw = {**won_event(fake_close), "organization_id": "orga_other"}

    queue_event(raw, queue)
    work()

    [line] = [r for r in caplog.records if r.getMessage() == "event_of_other_organization"]
    fields = record_fields(line)
    assert (
        [],
        (0, 0),
        logging.WARNING,
        ("other_organization", "orga_other", [ORGANIZATION_ID]),
    ) == (
        fake_close.requests_matching(path_prefix="opportunity/"),
        (queue.failed_job_registry.count, queue.scheduled_job_registry.count),
        line.levelno,
        (fields["outcome"], fields["organization_id"], fields["known_organizations"]),
    )


def test_jobs_worker_learns_the_organization_for_the_web(
    fake_close: FakeClose, work: Callable[..., None], redis_client: redis.Redis
) -> None:
    """At start a worker asks Close's `GET /me/` which organization its key belongs to and
    leaves it in Redis, with a time to live, for the web processes."""
    work()

    assert ([ORGANIZATION_ID.encode()], True) == (
        [redis_client.get(ORGANIZATIONS_KEY)],
        0 < redis_client.ttl(ORGANIZATIONS_KEY) <= ORGANIZATIONS_TTL_SEC,
    )
