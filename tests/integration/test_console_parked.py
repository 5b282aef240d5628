"""The console's parked page: events parked by a real worker against the fake Close answering
400, shown with Close's answer, field errors and rules; retried from the page and applied by
a worker; purged after a confirmation; refused to a read-only session."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from rq import Queue
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from fakeclose import FakeClose
from service.adapters.history import History
from service.adapters.parked import REASON_FIELD
from service.config import defaults
from service.config.settings import Settings
from service.console.pages import parked as parked_page
from tests.integration.console_login import (
    ADMIN_PASSWORD,
    READ_PASSWORD,
    console_client,
    csrf_token,
    park_a_refused_update,
    work,
)

__all__ = ["console_client"]  # the fixture, imported to be used here

pytestmark = pytest.mark.allow_error_logs  # parking an event logs it at ERROR
REFUSED = "&#39;Enterprise&#39; is not one of the field&#39;s choices."
_ROW_ID = re.compile(r'<tr class="parked-event" id="parked-([^"]+)">')
_CONFIRM_FORM = re.compile(r'<form id="purge-confirm-form".*?</form>', re.S)
_JOB_ID = re.compile(r'<input type="hidden" name="job_id" value="([^"]+)">')


def page(client: FlaskClient, **args: str) -> str:
    answer = client.get("/console/parked", query_string=args)
    assert 200 == answer.status_code
    return answer.text


def post(client: FlaskClient, path: str, **form: str | list[str]) -> tuple[int, str, str]:
    """POST a form as the page would, with the session's CSRF token: (status, Location, body)."""
    token = csrf_token(page(client))
    answer = client.post(path, data={"csrf_token": token, **form})
    return answer.status_code, answer.headers.get("Location", ""), answer.text


def confirmed_ids(asked: str) -> list[str]:
    """The events the purge confirmation names."""
    form = _CONFIRM_FORM.search(asked)
    return _JOB_ID.findall(form.group(0)) if form else []


def allow_choice(fake: FakeClose, field_name: str, choice: str) -> None:
    """An admin adds the missing choice to the field in Close: the cause is fixed."""
    with fake.store.lock:
        for field in fake.store.custom_fields.values():
            if field["name"] == field_name:
                field["choices"] = [*field["choices"], choice]


@pytest.fixture
def parked(fake_close: FakeClose, queue: Queue, settings: Settings) -> str:
    """One event parked by a real worker: Close answered its update 400. The opportunity."""
    return park_a_refused_update(fake_close, queue, settings)


def test_the_page_shows_closes_answer_its_field_errors_and_the_rules(
    parked: str, console_client: Callable[[str], FlaskClient], queue: Queue
) -> None:
    """What Close said, each field error, the rule that asked for the write, links to the
    deal; a read-only session sees no buttons."""
    (job_id,) = queue.failed_job_registry.get_job_ids()

    shown = page(console_client(READ_PASSWORD))

    assert [job_id] == _ROW_ID.findall(shown)
    assert "400 Bad Request for PUT" in shown
    assert re.search(r"<dt><code>custom\.cf_[A-Za-z0-9]+\.add</code></dt><dd>" + REFUSED, shown)
    assert "<li>tag-big-deals</li>" in shown
    assert f'href="/console/deal?q={parked}"' in shown
    assert f'href="https://app.close.com/opportunity/{parked}/"' in shown
    assert 'id="retry-all"' not in shown
    assert 'id="purge"' not in shown


def test_an_event_parked_by_an_older_version_shows_the_reason_rq_kept(
    parked: str, console_client: Callable[[str], FlaskClient], queue: Queue
) -> None:
    """Before store_compactly, RQ kept why in a result stream beside the job: the page reads
    the stream where one is left (it reads the job's hash for the others, in one trip)."""
    (job_id,) = queue.failed_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    queue.connection.hdel(job.key, REASON_FIELD)
    Result.create_failure(job, ttl=600, exc_string="Traceback\nCloseError: kept by RQ")

    shown = page(console_client(READ_PASSWORD))

    assert "CloseError: kept by RQ" in shown


def test_the_page_keeps_to_one_deal_when_asked(
    parked: str,
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    console_client: Callable[[str], FlaskClient],
) -> None:
    other = park_a_refused_update(fake_close, queue, settings)
    client = console_client(READ_PASSWORD)

    assert 2 == len(_ROW_ID.findall(page(client)))
    one = page(client, opportunity=other)
    assert 1 == len(_ROW_ID.findall(one))
    assert f'href="/console/deal?q={other}"' in one
    assert f'href="/console/deal?q={parked}"' not in one


def test_retry_one_from_the_page_and_a_worker_applies_it(
    parked: str,
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    console_client: Callable[[str], FlaskClient],
) -> None:
    """The cause fixed in Close, the admin retries the event: it leaves the parked store,
    a worker applies it, and the deal's history says so."""
    (job_id,) = queue.failed_job_registry.get_job_ids()
    allow_choice(fake_close, "Segment", "Enterprise")
    admin = console_client(ADMIN_PASSWORD)
    assert f'id="retry-{job_id}"' in page(admin)

    status, location, _ = post(admin, "/console/parked/retry", job_id=job_id)

    assert (303, "/console/parked") == (status, location)
    assert "Requeued 1." in page(admin)
    assert (0, [job_id]) == (queue.failed_job_registry.count, queue.job_ids)
    requeued = queue.fetch_job(job_id)
    assert requeued is not None
    assert len(defaults.JOB_RETRY_INTERVALS_SEC) == requeued.retries_left  # a full set again
    work(settings)
    assert ["Enterprise"] == fake_close.opportunity(parked)[_segment_key(fake_close)]
    (latest, *_) = History(queue.connection).for_opportunity(parked)
    assert ("applied", ["tag-big-deals"]) == (latest.outcome, latest.fired)
    assert 'id="parked-none"' in page(admin)


def test_retry_all_requeues_every_parked_event(
    parked: str,
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    console_client: Callable[[str], FlaskClient],
) -> None:
    park_a_refused_update(fake_close, queue, settings)
    admin = console_client(ADMIN_PASSWORD)

    status, _, _ = post(admin, "/console/parked/retry", all="yes")

    assert 303 == status
    assert "Requeued 2." in page(admin)
    assert (0, 2) == (queue.failed_job_registry.count, queue.count)


def test_a_read_only_session_may_not_retry_or_purge(
    parked: str, queue: Queue, console_client: Callable[[str], FlaskClient]
) -> None:
    """With a valid CSRF token, still 403: acting needs the admin password."""
    reader = console_client(READ_PASSWORD)
    (job_id,) = queue.failed_job_registry.get_job_ids()

    retried = post(reader, "/console/parked/retry", job_id=job_id)
    retried_all = post(reader, "/console/parked/retry", all="yes")
    purged = post(reader, "/console/parked/purge", confirm="yes", job_id=[job_id])

    assert [403, 403, 403] == [retried[0], retried_all[0], purged[0]]
    assert ([job_id], 0) == (queue.failed_job_registry.get_job_ids(), queue.count)


def test_an_action_without_the_csrf_token_is_refused(
    parked: str, queue: Queue, console_client: Callable[[str], FlaskClient]
) -> None:
    admin = console_client(ADMIN_PASSWORD)
    (job_id,) = queue.failed_job_registry.get_job_ids()

    answer = admin.post("/console/parked/purge", data={"confirm": "yes", "job_id": job_id})

    assert 403 == answer.status_code
    assert [job_id] == queue.failed_job_registry.get_job_ids()


def test_purge_asks_first_and_deletes_only_on_confirmation(
    parked: str, queue: Queue, console_client: Callable[[str], FlaskClient]
) -> None:
    """The first POST only asks; the confirmation deletes the events it listed, job and
    all, and says how many."""
    admin = console_client(ADMIN_PASSWORD)
    (job_id,) = queue.failed_job_registry.get_job_ids()

    status, _, asked = post(admin, "/console/parked/purge")

    assert 200 == status
    assert "Delete 1 parked event for good?" in asked
    assert [job_id] == queue.failed_job_registry.get_job_ids()
    listed = confirmed_ids(asked)
    assert [job_id] == listed

    status, location, _ = post(admin, "/console/parked/purge", confirm="yes", job_id=listed)

    assert (303, "/console/parked") == (status, location)
    assert "Purged 1 parked event for good." in page(admin)
    assert (0, None) == (queue.failed_job_registry.count, queue.fetch_job(job_id))


def test_purge_spares_what_was_parked_after_the_confirmation_was_shown(
    parked: str,
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    console_client: Callable[[str], FlaskClient],
) -> None:
    admin = console_client(ADMIN_PASSWORD)
    (first,) = queue.failed_job_registry.get_job_ids()
    _, _, asked = post(admin, "/console/parked/purge")
    park_a_refused_update(fake_close, queue, settings)

    post(admin, "/console/parked/purge", confirm="yes", job_id=confirmed_ids(asked))

    (left,) = queue.failed_job_registry.get_job_ids()
    assert left != first


def _segment_key(fake: FakeClose) -> str:
    (field_id,) = [i for i, f in fake.store.custom_fields.items() if f["name"] == "Segment"]
    return f"custom.{field_id}"


def test_the_page_shows_the_newest_first_a_page_at_a_time(
    parked: str,
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    console_client: Callable[[str], FlaskClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full store is not drawn at once: a page of the newest, and a link to older ones."""
    monkeypatch.setattr(parked_page, "PAGE_SIZE", 1)
    newer = park_a_refused_update(fake_close, queue, settings)
    client = console_client(READ_PASSWORD)

    first = page(client)
    older = page(client, **{"from": "1"})

    assert f'href="/console/deal?q={newer}"' in first
    assert 'id="parked-older" href="/console/parked?from=1"' in first
    assert "2 parked; the newest 1 to 1 shown" in first
    assert f'href="/console/deal?q={parked}"' in older
    assert 'id="parked-newer" href="/console/parked?from=0"' in older
    assert 'id="parked-older"' not in older
