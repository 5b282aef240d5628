"""A custom field renamed or deleted in Close, or a status label gone, after the rules
loaded: the rules that use it stop firing (no write on a guess), and it shows where ops
look: one WARNING per change (not per event), `dealkeeper status` (text and --json),
/readyz's detail (still 200: events flow, other rules run) and a metric naming the rule
and the field. Real Redis, real workers, the fake Close."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from rq import Queue

from fakeclose import FakeClose
from service.adapters.metadata import MetadataCache
from service.adapters.queue import enqueue_event
from service.commands.cli import cli
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.processing import jobs
from service.processing.worker import make_worker

RULES = """\
timezone: America/New_York
rules:
  - name: tag-big-deals
    if:
      - value: {gte: 1000000}
      - custom.Segment: {not_contains: Enterprise}
    then:
      - add: {custom.Segment: Enterprise}
  - name: won-deals-go-to-onboarding
    if:
      - status_type: {changed_to: won}
    then:
      - set: {status: Onboarding}
  - name: full-confidence-when-won
    if:
      - status_type: won
    then:
      - set: {confidence: 100}
"""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "rules.yaml").write_text(RULES)
    return settings.with_changes(rules_path=str(tmp_path))


@pytest.fixture
def segment(fake_close: FakeClose) -> str:
    return fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )


@pytest.fixture
def onboarding(fake_close: FakeClose) -> str:
    fake_close.add_pipeline("Renewals")  # a second pipeline, for the label to live in
    return fake_close.add_pipeline("Onboarding", statuses=[("Onboarding", "active")])


@pytest.fixture
def work(settings: Settings) -> Callable[[], bool]:
    """A burst worker that reads Close's metadata for every event (a worker reads it every
    5 minutes, and at most every 10 s when a rule names what it lacks)."""
    worker = make_worker(settings)
    context = jobs.installed()
    context.metadata = MetadataCache(context.close, ttl_sec=0, min_refresh_interval_sec=0)
    return lambda: worker.work(burst=True, with_scheduler=False)


@pytest.fixture
def web(settings: Settings, web_client_for: Callable[..., FlaskClient]) -> FlaskClient:
    return web_client_for(settings, now=0.0)


def big_deal_event(fake: FakeClose, queue: Queue, segment: str) -> dict[str, Any]:
    """A person makes a deal big: tag-big-deals would add Enterprise to its Segment."""
    oppo = fake.add_opportunity(value=500000, **{f"custom.{segment}": ["SMB"]})
    raw = fake.user_update(oppo["id"], {"value": 1500000})
    assert raw is not None
    enqueue_event(event_from_dict(raw), queue=queue)
    return raw


def puts(fake: FakeClose) -> list[Any]:
    return [(r.path, r.json) for r in fake.requests_matching("PUT")]


def warnings(caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [r for r in caplog.records if r.getMessage() == "rule_fields_unknown"]


def status_of(settings: Settings) -> tuple[dict[str, Any], str]:
    env = {
        "REDIS_URL": str(settings.redis_url),
        "DEALKEEPER_RULES": settings.rules_path,
    }
    as_json = CliRunner().invoke(cli, ["status", "--json"], env=env)
    as_text = CliRunner().invoke(cli, ["status"], env=env)
    assert 0 == as_json.exit_code, as_json.output
    return json.loads(as_json.output), as_text.output


def test_a_renamed_custom_field_stops_its_rule_and_shows_everywhere_once(
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    segment: str,
    onboarding: str,
    work: Callable[[], bool],
    web: FlaskClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dealkeeper")
    big_deal_event(fake_close, queue, segment)
    work()  # known: the rule writes, and nothing is said
    assert 1 == len(puts(fake_close))
    assert [] == warnings(caplog)

    fake_close.rename_custom_field(segment, "Segments")
    fake_close.clear_requests()
    for _ in range(2):
        big_deal_event(fake_close, queue, segment)
    work()

    assert [] == puts(fake_close)  # the rule does not fire on a name Close has not
    [warning] = warnings(caplog)  # two events, one line
    assert logging.WARNING == warning.levelno
    unknown = {
        "rule": "tag-big-deals",
        "field": "custom.Segment",
        "reason": "Close has no opportunity custom field named 'Segment'; did you mean 'Segments'?",
    }
    assert [unknown] == warning.__dict__["unknown"]
    shown, text = status_of(settings)
    assert [unknown] == shown["rule_fields_unknown"]
    assert "rule tag-big-deals: custom.Segment: Close has no opportunity custom field" in text
    ready = web.get("/readyz")
    assert (200, [unknown]) == (ready.status_code, (ready.json or {})["rule_fields_unknown"])
    scraped = web.get("/metrics").get_data(as_text=True)
    assert (
        'dealkeeper_rule_fields_unknown{field="custom.Segment",rule="tag-big-deals"} 1.0' in scraped
    )

    fake_close.rename_custom_field(segment, "Segment")  # put back in Close
    big_deal_event(fake_close, queue, segment)
    work()

    assert 1 == len(puts(fake_close))
    assert ["rule_fields_known_again"] == [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("rule_fields_known")
    ]
    assert [] == status_of(settings)[0]["rule_fields_unknown"]
    assert "dealkeeper_rule_fields_unknown{" not in web.get("/metrics").get_data(as_text=True)


def test_a_deleted_custom_field_and_a_status_label_gone_name_their_rules(
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
    segment: str,
    onboarding: str,
    work: Callable[[], bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Deleted in Close: no write on a guess; a rule naming neither still runs."""
    caplog.set_level(logging.INFO, logger="dealkeeper")
    fake_close.delete_custom_field(segment)
    fake_close.rename_status(fake_close.status_id("Onboarding", pipeline_id=onboarding), "Setup")
    oppo = fake_close.add_opportunity(value=1500000, confidence=50)
    raw = fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Won")})
    assert raw is not None
    enqueue_event(event_from_dict(raw), queue=queue)

    work()

    # Only the rule whose names Close knows wrote: no status, no Segment.
    assert [(f"opportunity/{oppo['id']}/", {"confidence": 100})] == puts(fake_close)
    assert [
        ("tag-big-deals", "custom.Segment"),
        ("won-deals-go-to-onboarding", "status: Onboarding"),
    ] == [(e["rule"], e["field"]) for e in status_of(settings)[0]["rule_fields_unknown"]]
    [warning] = warnings(caplog)
    assert "did you mean" not in warning.__dict__["unknown"][0]["reason"]
