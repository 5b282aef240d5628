"""Sweeps against a Close answering as its documents allow. A sweep never writes from a
listing that may lack fields: Close documents `_fields` with custom fields (`custom`,
`custom.cf_X`) for leads only, so the listing asks for whole deals when the rule reads
custom fields, and each swept deal's job plans again from the whole deal it reads before
writing. A scheduled run that Close's paging cannot move on fails, saying so."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from rq import Queue

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event
from service.config.settings import Settings
from service.core.events import swept_event
from service.processing.sweeps.paging import PagingStalledError
from service.processing.sweeps.schedule import run_scheduled_sweep
from service.processing.worker import make_worker
from tests.integration.sweeps_support import MOMENT, write_rules

UNKNOWN_SOURCE = """\
timezone: America/New_York
rules:
  - name: source-unknown
    schedule: "0 6 * * 1-5"
    find: {status_type: active}
    if:
      - custom.Source: {empty: true}
    then:
      - set: {custom.Source: Unknown}
"""


@pytest.fixture
def source(fake_close: FakeClose) -> str:
    """The Source custom field, and a Close whose opportunity list leaves custom fields out
    when `_fields` names them."""
    fake_close.set_opportunity_listing(custom_by_fields=False)
    return fake_close.add_custom_field("Source")


@pytest.fixture
def unknown_source(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings, with the source-unknown sweep as the rules in force, pacing Close
    requests at 500/s (the fake's own limit is generous)."""
    rules = write_rules(tmp_path / "rules", UNKNOWN_SOURCE)
    tuning = replace(settings.tuning, close_rate_limit_per_sec=500.0)
    return settings.with_changes(rules_path=str(rules), tuning=tuning)


def work(settings: Settings) -> None:
    make_worker(settings).work(burst=True, with_scheduler=False)


def sources(fake: FakeClose, field: str, ids: list[str]) -> list[object]:
    return [fake.opportunity(i).get(f"custom.{field}") for i in ids]


def test_sweep_partial_listing_never_overwrites_a_set_custom_field(
    fake_close: FakeClose, source: str, unknown_source: Settings
) -> None:
    """20 deals with a Source and 5 without, the rule filling an empty Source with
    Unknown: the 20 keep theirs, the 5 get Unknown."""
    named = [
        fake_close.add_opportunity(**{f"custom.{source}": f"Web {n}"})["id"] for n in range(20)
    ]
    empty = [fake_close.add_opportunity()["id"] for _ in range(5)]

    make_worker(unknown_source)
    summary = run_scheduled_sweep("source-unknown", MOMENT.isoformat())
    work(unknown_source)

    assert [f"Web {n}" for n in range(20)] == sources(fake_close, source, named)
    assert ["Unknown"] * 5 == sources(fake_close, source, empty)
    assert (25, 5) == (summary["listed"], summary["queued"])


def test_sweep_partial_listing_job_plans_from_the_deal_it_reads(
    fake_close: FakeClose, source: str, unknown_source: Settings, queue: Queue
) -> None:
    """A swept event made from a listing without the deal's custom fields (its date_updated
    the deal's own) writes nothing: the job plans from the whole deal before writing."""
    deal = fake_close.add_opportunity(**{f"custom.{source}": "Referral"})
    listed = {k: v for k, v in deal.items() if not k.startswith("custom.")}

    enqueue_event(swept_event(listed, sweep="source-unknown", moment=MOMENT), queue=queue)
    work(unknown_source)

    assert ["Referral"] == sources(fake_close, source, [deal["id"]])
    assert [] == fake_close.requests_matching("PUT")


@pytest.mark.allow_error_logs
def test_sweep_scheduled_run_fails_when_close_pages_bring_nothing_new(
    fake_close: FakeClose,
    unknown_source: Settings,
    queue: Queue,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Close answering has_more true with empty pages: the scheduled run fails after one
    such page, logging sweep_stalled for a person to look at, and queues nothing."""
    fake_close.add_opportunity()
    empty = {"data": [], "has_more": True}
    fake_close.fail_next(1000, status=200, method="GET", path_prefix="opportunity/", body=empty)

    make_worker(unknown_source)
    with pytest.raises(PagingStalledError):
        run_scheduled_sweep("source-unknown", MOMENT.isoformat())
    stalled = [
        (getattr(r, "sweep"), r.levelno)  # noqa: B009 - from `extra=`
        for r in caplog.records
        if r.getMessage() == "sweep_stalled"
    ]

    assert [("source-unknown", logging.ERROR)] == stalled
    assert (1, 0) == (len(fake_close.requests_matching("GET", "opportunity/")), queue.count)
