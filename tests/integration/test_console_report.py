"""The console's hygiene report page (/console/report) with the real app, a real Redis, the
fake Close holding 36 deals of three owners in two pipelines, and a real worker process
computing the report: opening the page never calls Close, many loads queue one refresh,
the worker's figures are shown, and the CSV is `dealkeeper report --csv`'s."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from flask.testing import FlaskClient
from rq import Queue, Worker

from fakeclose import FakeClose
from service.adapters import reportcache
from service.adapters.queue import make_queue
from service.commands.cli import cli
from service.config.settings import Settings
from tests.conftest import REPO
from tests.consoleclient import console_client, console_settings, sign_in
from tests.integration.sweeps_support import write_rules
from tests.integration.test_report_cli import RULES, Deal, failing, grouped, seed_deals
from tests.waiting import wait_for


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules(tmp_path / "rules", RULES)


@pytest.fixture
def deals(fake_close: FakeClose) -> list[Deal]:
    return seed_deals(fake_close)


@pytest.fixture
def settings(redis_url: str, fake_close: FakeClose, rules_dir: Path) -> Settings:
    return console_settings(
        redis_url,
        rules_dir,
        close_api_key=FakeClose.DEFAULT_API_KEY,
        close_api_url=fake_close.url,
    )


@pytest.fixture
def app_for() -> Iterator[object]:
    apps = []

    def make(settings: Settings) -> FlaskClient:
        made = console_client(settings)
        apps.append(made.application)
        return made

    yield make
    for app in apps:
        app.extensions["dealkeeper"].connection.close()


@pytest.fixture
def client(app_for: object, settings: Settings) -> FlaskClient:
    made: FlaskClient = app_for(settings)  # type: ignore[operator]
    sign_in(made)
    return made


@pytest.fixture
def worker(
    settings: Settings, fake_close: FakeClose, redis_url: str, tmp_path: Path
) -> Iterator[None]:
    """One real worker process on the test's Redis and the fake Close."""
    variables = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake_close.url,
        "DEALKEEPER_RULES": settings.rules_path,
        "DEALKEEPER_CATCHUP_INTERVAL": "0",
        "CLOSE_RATE_LIMIT": "500",
    }
    with (tmp_path / "worker.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "worker"], env=variables, cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    connection = redis.Redis.from_url(redis_url)
    wait_for(lambda: Worker.count(connection=connection) == 1, what="the worker to register")
    yield
    process.terminate()
    process.wait(timeout=30)
    connection.close()


def refresh_jobs(queue: Queue) -> list[str]:
    return [j.id for j in queue.get_jobs() if j.func_name == reportcache.REFRESH_JOB]


def page(client: FlaskClient, path: str = "/console/report") -> str:
    answer = client.get(path)
    assert 200 == answer.status_code, answer.get_data(as_text=True)
    return answer.get_data(as_text=True)


def test_many_page_loads_queue_one_refresh_and_never_call_close(
    client: FlaskClient, deals: list[Deal], fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """With nothing computed, every load says "refreshing"; only the first queues a job, and
    no load reads Close (no worker runs here)."""
    queue = make_queue(redis_client)
    before = len(fake_close.requests)

    texts = [page(client) for _ in range(25)]

    assert 1 == len(refresh_jobs(queue))
    assert all("Refreshing" in text and "Not computed yet." in text for text in texts)
    assert 'id="report-no-worker"' in texts[-1]
    assert before == len(fake_close.requests)


def test_a_fresh_report_is_shown_without_a_refresh_and_an_old_one_is_refreshed(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    queue = make_queue(redis_client)
    report = {"computed_at": "2026-12-06T07:00:00+00:00", "rules_digest": "d", "checks": []}
    reportcache.store_report(redis_client, report, computed_at=time.time() - 60)

    assert "Computed " in page(client)
    assert [] == refresh_jobs(queue)

    stale = time.time() - reportcache.STALE_AFTER_SEC - 5
    reportcache.store_report(redis_client, report, computed_at=stale)
    text = page(client)

    assert "older than 15 minutes" in text and "Refreshing" in text
    assert 1 == len(refresh_jobs(queue))


def test_a_worker_computes_the_report_and_the_page_shows_its_figures(
    client: FlaskClient,
    deals: list[Deal],
    fake_close: FakeClose,
    redis_client: redis.Redis,
    worker: None,
) -> None:
    """The page queues a refresh; the worker lists the deals through Close (reading only)
    and keeps the report; the next load shows each check's failing deals, value at stake
    and per-rep tables, as counted here by hand from the seeded deals."""
    page(client)
    wait_for(
        lambda: reportcache.read_cached(redis_client).report is not None,
        what="the worker to keep the report",
    )
    wait_for(lambda: redis_client.get(reportcache.REFRESH_KEY) is None, what="the guard to go")

    text = page(client)

    assert "Refreshing" not in text and "Computed " in text
    for check in ("low-confidence-raised", "big-and-unsure"):
        expected = failing(deals, check)
        value = sum(d["value"] for d in expected)
        assert f'id="failing-{check}">{len(expected)}<' in text
        assert f'id="value-{check}">{value // 100:,}.{value % 100:02d}<' in text
    for owner, (n, value) in grouped(failing(deals, "big-and-unsure"), "user_name").items():
        row = (
            '<tr class="rep-row"><td>big-and-unsure <span class="muted">(report check)</span>'
            f'</td><td class="num">{n}</td><td class="num">{value // 100:,}.{value % 100:02d}'
        )
        assert row in text.split(f'data-owner="{owner}"')[1].split("</table>")[0]
    assert [] == fake_close.requests_matching("PUT")
    assert [] == fake_close.requests_matching("POST")
    # Every request the worker made took a slot of the shared pacer (adapters/ratelimit.py)
    # before it was sent (the worker may be sending another one meanwhile: hence >=).
    made = len(fake_close.requests)
    slots = sum(
        int(redis_client.hget(key, "seq") or 0)
        for key in redis_client.scan_iter()
        if redis_client.type(key) == b"hash"
    )
    assert len(fake_close.requests_matching("GET", "opportunity/")) > 0
    assert slots >= made > 0


def test_the_csv_is_the_one_dealkeeper_report_prints(
    client: FlaskClient,
    deals: list[Deal],
    fake_close: FakeClose,
    redis_client: redis.Redis,
    settings: Settings,
    worker: None,
) -> None:
    assert 404 == client.get("/console/report.csv").status_code  # nothing kept yet
    page(client)
    wait_for(
        lambda: reportcache.read_cached(redis_client).report is not None,
        what="the worker to keep the report",
    )

    answer = client.get("/console/report.csv")
    env = {
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake_close.url,
        "DEALKEEPER_RULES": settings.rules_path,
    }
    printed = CliRunner().invoke(cli, ["report", "--csv"], env=env)

    assert 0 == printed.exit_code, printed.output
    assert "text/csv" in answer.headers["Content-Type"]
    assert "attachment" in answer.headers["Content-Disposition"]
    text = answer.get_data(as_text=True)
    assert printed.output == text
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = failing(deals, "low-confidence-raised")
    mine = [r for r in rows if r["check"] == "low-confidence-raised"]
    assert len(expected) == sum(int(r["failing_deals"]) for r in mine)
    assert sum(d["value"] for d in expected) == sum(int(r["value_cents"]) for r in mine)


def test_refresh_now_needs_the_csrf_token_and_queues_one_job(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    """The read role may ask (one bounded job); a second ask while it waits queues none."""
    queue = make_queue(redis_client)
    reportcache.store_report(redis_client, {"checks": []}, computed_at=time.time())
    csrf = sign_in(client)  # read role

    refused = client.post("/console/report/refresh", data={})
    first = client.post("/console/report/refresh", data={"csrf_token": csrf})
    second = client.post("/console/report/refresh", data={"csrf_token": csrf})

    assert 403 == refused.status_code
    assert (303, 303) == (first.status_code, second.status_code)
    assert first.headers["Location"].endswith("/console/report?refresh=queued")
    assert second.headers["Location"].endswith("/console/report?refresh=running")
    assert 1 == len(refresh_jobs(queue))
    assert "A refresh is queued or running already" in page(
        client, "/console/report?refresh=running"
    )


def test_without_a_close_key_the_page_says_why_and_queues_nothing(
    app_for: object, settings: Settings, redis_client: redis.Redis
) -> None:
    keyless = settings.with_changes(close_api_key=None)
    made: FlaskClient = app_for(keyless)  # type: ignore[operator]
    csrf = sign_in(made)

    text = page(made)
    made.post("/console/report/refresh", data={"csrf_token": csrf})

    assert "CLOSE_API_KEY is not set" in text
    assert [] == refresh_jobs(make_queue(redis_client))


@pytest.mark.usefixtures("deals")
def test_the_refresh_job_keeps_why_it_failed(
    client: FlaskClient, fake_close: FakeClose, redis_client: redis.Redis, worker: None
) -> None:
    """Close refusing the listing: the failure is shown, the job is not parked, and the
    page does not ask again at every load (Refresh now does)."""
    fake_close.fail_next(1000, status=400, method="GET", path_prefix="opportunity/")
    page(client)
    wait_for(
        lambda: reportcache.read_cached(redis_client).failure is not None,
        what="the worker to keep the failure",
    )
    wait_for(lambda: redis_client.get(reportcache.REFRESH_KEY) is None, what="the guard to go")

    text = page(client)

    assert 'id="report-failure"' in text and "Refreshing" not in text
    assert 0 == make_queue(redis_client).failed_job_registry.count


def test_of_many_processes_asking_at_once_one_queues_the_refresh(redis_url: str) -> None:
    """The page reads the guard before asking, but two web processes may both read it
    absent: the SET NX decides, so only one of them queues."""
    barrier = threading.Barrier(8)
    answers: list[bool] = []

    def ask() -> None:
        connection = redis.Redis.from_url(redis_url)
        barrier.wait()
        answers.append(reportcache.request_refresh(connection))
        connection.close()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    connection = redis.Redis.from_url(redis_url)
    assert [True] == [a for a in answers if a] and 8 == len(answers)
    assert 1 == len(refresh_jobs(make_queue(connection)))
    connection.close()
