"""The console's sweeps page and its dry run: the real app, Redis, RQ workers and the fake
Close with aged deals."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from service.adapters.close import CloseClient
from service.config.settings import Settings
from service.console.pages import sweeps as sweeps_page
from service.core.rules import load_rules_path
from service.processing.sweeps.dryrun import bounded_dry_run
from service.processing.sweeps.schedule import run_scheduled_sweep
from service.processing.worker import make_worker
from tests.integration.console_rules_support import console_app, signed_in
from tests.integration.sweeps_support import MOMENT, STALE_RULES, matching, moment_of, write_rules

QUIET_RULES = STALE_RULES.replace("older_than: 60d", "older_than: 240d")
# Monday 10:30 UTC, half an hour after the 06:00 New York run at MOMENT.
NOW = MOMENT + timedelta(minutes=30)
DEALS = 300


def is_listed(o: Mapping[str, Any], *, at: datetime) -> bool:
    """What the sweep's find asks Close for at `at`."""
    quiet = moment_of(o, "date_updated") <= at - timedelta(days=240)
    return o["status_type"] == "active" and quiet


def is_stale(o: Mapping[str, Any], *, at: datetime) -> bool:
    return is_listed(o, at=at) and o["confidence"] > 10


@pytest.fixture
def stale(settings: Settings, fake_close: FakeClose, tmp_path: Path) -> Settings:
    """300 aged deals and the stale-deals sweep (240 days), paced fast for the fake."""
    seed_aged(fake_close, count=DEALS, now=MOMENT, seed=5)
    return settings.with_changes(
        rules_path=str(write_rules(tmp_path / "rules", QUIET_RULES)),
        tuning=replace(settings.tuning, close_rate_limit_per_sec=500.0),
    )


def page_of(client: Any, path: str = "/console/sweeps") -> str:
    answer = client.get(path)
    assert answer.status_code == 200
    return html.unescape(answer.get_data(as_text=True))


def cells(page: str, name: str) -> list[str]:
    return re.findall(rf'<td class="num {name}">([^<]*)</td>', page)


def test_sweeps_show_schedule_next_run_and_last_runs_with_their_jobs_outcomes(
    stale: Settings, fake_close: FakeClose, queue: Queue
) -> None:
    """A real scheduled run, its jobs worked by a real worker: the page shows what the run
    listed, matched and queued, and how many of the queued jobs wrote."""
    expected = matching(fake_close, lambda o: is_stale(o, at=MOMENT))
    listed = matching(fake_close, lambda o: is_listed(o, at=MOMENT))
    make_worker(stale)
    summary = run_scheduled_sweep("stale-deals", MOMENT.isoformat())
    assert summary["queued"] == len(expected) > 5
    # One of them is put right by hand before its job runs: its job ends "stale".
    first = sorted(expected)[0]
    fake_close.user_update(first, {"confidence": 10})
    make_worker(stale).work(burst=True, with_scheduler=False)

    app = console_app(stale, clock=lambda: NOW.timestamp())
    client, _ = signed_in(app, admin=False)
    page = page_of(client)

    assert 'data-sweep="stale-deals"' in page
    assert "0 6 * * 1-5" in page and "America/New_York" in page
    assert "date_updated older_than 240d" in page
    # Monday 10:30 UTC: the next 06:00 in New York (EDT) is Tuesday 10:00 UTC.
    assert "2026-03-10 10:00 UTC (in 23h 30m)" in page
    assert cells(page, "run-listed") == [str(len(listed))]
    assert cells(page, "run-matched") == [str(len(expected))]
    assert cells(page, "run-queued") == [str(len(expected))]
    assert cells(page, "run-updated") == [str(len(expected) - 1)]
    assert "stale 1" in page  # changed by hand since the run: its job found nothing to do
    assert 'id="dry-run-1"' not in page  # read only: no button


def test_next_run_skips_the_weekend(stale: Settings) -> None:
    friday_noon = datetime(2026, 3, 13, 16, 0, tzinfo=UTC)
    app = console_app(stale, clock=lambda: friday_noon.timestamp())
    client, _ = signed_in(app, admin=False)
    assert "2026-03-16 10:00 UTC (in 2d 18h)" in page_of(client)


def test_dry_run_shows_what_a_run_would_write_and_writes_nothing(
    stale: Settings,
    fake_close: FakeClose,
    queue: Queue,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweeps_page, "DRY_RUN_MAX_DEALS", 1000)
    expected = matching(fake_close, lambda o: is_stale(o, at=NOW))
    listed = len(matching(fake_close, lambda o: is_listed(o, at=NOW)))
    app = console_app(stale, clock=lambda: NOW.timestamp())
    client, csrf = signed_in(app, admin=True)
    fake_close.clear_requests()

    posted = client.post(
        "/console/sweeps/dry-run", data={"sweep": "stale-deals", "csrf_token": csrf}
    )
    assert posted.status_code == 303
    page = page_of(client, posted.headers["Location"])

    shown = set(re.findall(r'class="dry-run-update" data-opportunity="([^"]+)"', page))
    assert shown == expected and len(expected) > 5
    assert page.count("-> 10, custom.Segment ") == len(expected)
    assert page.count(' + "Stale"</code>') == len(expected)
    assert re.search(rf'id="dry-run-listed">{listed} of {listed}<', page)
    assert re.search(rf'id="dry-run-would-update">{len(expected)}<', page)
    assert "Nothing was queued and nothing was written to Close" in page
    assert [] == [(r.method, r.path) for r in fake_close.requests if r.method != "GET"]
    assert queue.count == 0 and queue.scheduled_job_registry.count == 0


def test_dry_run_is_bounded_and_says_so(
    stale: Settings, fake_close: FakeClose, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's bound, here the first 5 deals of those Close lists."""
    monkeypatch.setattr(sweeps_page, "DRY_RUN_MAX_DEALS", 5)
    listed = len(matching(fake_close, lambda o: is_listed(o, at=NOW)))
    app = console_app(stale, clock=lambda: NOW.timestamp())
    client, csrf = signed_in(app, admin=True)
    posted = client.post(
        "/console/sweeps/dry-run", data={"sweep": "stale-deals", "csrf_token": csrf}
    )
    page = page_of(client, posted.headers["Location"])
    assert f"stopped after the first 5 deals listed (5 of {listed} deals judged)" in page
    assert re.search(rf'id="dry-run-listed">5 of {listed}<', page)
    assert len(re.findall(r'class="dry-run-update"', page)) <= 5


def test_dry_run_stops_at_its_time_budget(stale: Settings, fake_close: FakeClose) -> None:
    """Time is looked at between pages (of 5 deals here): a clock 10 s further at each look
    stops a 15 s budget after the first page."""
    ticks = iter(range(0, 1000, 10))
    rules = load_rules_path(stale.rules_path)
    rule = rules.rule("stale-deals")
    assert rule is not None
    with CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake_close.url) as client:
        found = bounded_dry_run(
            rule, ruleset=rules, moment=NOW, client=client, metadata=None,
            max_deals=1000, budget_sec=15, page_limit=5, clock=lambda: float(next(ticks)),
        )  # fmt: skip
    assert found.stopped == "stopped after 15 s"
    assert found.progress.tally.listed == 5 and found.progress.pages == 1


def test_dry_run_needs_the_admin_role_and_the_csrf_token(
    stale: Settings, fake_close: FakeClose
) -> None:
    app = console_app(stale, clock=lambda: NOW.timestamp())
    reader, csrf = signed_in(app, admin=False)
    fake_close.clear_requests()
    refused = reader.post(
        "/console/sweeps/dry-run", data={"sweep": "stale-deals", "csrf_token": csrf}
    )
    assert refused.status_code == 403
    admin, _ = signed_in(app, admin=True)
    assert admin.post("/console/sweeps/dry-run", data={"sweep": "stale-deals"}).status_code == 403
    assert [] == fake_close.requests


def test_dry_run_without_a_key_says_why_it_cannot(stale: Settings, fake_close: FakeClose) -> None:
    app = console_app(replace(stale, close_api_key=None), clock=lambda: NOW.timestamp())
    client, csrf = signed_in(app, admin=True)
    page = page_of(client)
    assert "CLOSE_API_KEY is not set" in page and 'id="dry-run-1" disabled' in page
    posted = client.post(
        "/console/sweeps/dry-run", data={"sweep": "stale-deals", "csrf_token": csrf}
    )
    assert posted.status_code == 303
    after = page_of(client, posted.headers["Location"])
    assert 'id="sweeps-problem"' in after and "a dry run lists the sweep's deals" in after
    assert [] == fake_close.requests


def test_dry_run_tells_a_refusal_or_a_long_rate_limit_from_close(
    stale: Settings, fake_close: FakeClose
) -> None:
    """A 400 on the listing is shown as Close's answer; a 429 asking for a minute ends the
    run at once (the console waits at most a few seconds) and says so."""
    app = console_app(stale, clock=lambda: NOW.timestamp())
    client, csrf = signed_in(app, admin=True)
    form = {"sweep": "stale-deals", "csrf_token": csrf}

    fake_close.fail_next(1, status=400, method="GET", path_prefix="opportunity/",
                         body={"error": "Bad filter"})  # fmt: skip
    refused = page_of(client, client.post("/console/sweeps/dry-run", data=form).headers["Location"])
    assert 'id="sweeps-problem"' in refused and "Bad filter" in refused

    fake_close.fail_next(1, status=429, method="GET", path_prefix="opportunity/",
                         headers={"retry-after": "60"}, body={"error": "slow down"})  # fmt: skip
    started = time.monotonic()
    limited = page_of(client, client.post("/console/sweeps/dry-run", data=form).headers["Location"])
    assert time.monotonic() - started < 30
    assert "ended early: stopped by Close's rate limit (Close asks to wait 60 s)" in limited
    assert "None of the deals judged would be changed" in limited
