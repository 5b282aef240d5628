"""The three sweep recipes of rules/examples/ end to end: each listed from the fake Close
holding 2,400 deals, each change queued as a job and written by a worker, each deal left
as the recipe says."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from service.config.settings import Settings
from service.processing.sweeps.schedule import run_scheduled_sweep
from service.processing.worker import make_worker
from tests.conftest import RULES_DIR
from tests.integration.sweeps_support import MOMENT, matching, moment_of

NY = ZoneInfo("America/New_York")
Deal = Mapping[str, Any]


@pytest.fixture
def recipes(settings: Settings, tmp_path: Path) -> Settings:
    """The three sweep recipes as the rules in force, Close paced at 500 requests a second."""
    folder = tmp_path / "rules"
    folder.mkdir()
    for recipe in RULES_DIR.joinpath("examples").glob("sweep-*.yaml"):
        if not recipe.name.endswith(".test.yaml"):
            shutil.copy(recipe, folder / recipe.name)
    tuning = replace(settings.tuning, close_rate_limit_per_sec=500.0)
    return settings.with_changes(rules_path=str(folder), tuning=tuning)


def run(settings: Settings, name: str, at: datetime) -> dict[str, Any]:
    """The sweep's scheduled job at `at`, then a worker over the jobs it queued."""
    make_worker(settings)
    summary = run_scheduled_sweep(name, at.isoformat())
    make_worker(settings).work(burst=True, with_scheduler=False)
    return summary


def test_sweep_examples_stale_deals(recipes: Settings, fake_close: FakeClose) -> None:
    """Monday 06:00 New York: active deals quiet for 60 days drop to 10 %, tagged Stale."""
    seed_aged(fake_close, count=2400, now=MOMENT, seed=21, days=120)
    cutoff = MOMENT - timedelta(days=60)

    def stale(o: Deal) -> bool:
        quiet = moment_of(o, "date_updated") <= cutoff
        return o["status_type"] == "active" and quiet and o["confidence"] > 10

    expected = matching(fake_close, stale)
    summary = run(recipes, "stale-deals", MOMENT)

    segment = _field_id(fake_close, "Segment")
    after = [fake_close.opportunity(i) for i in expected]
    assert len(expected) == summary["queued"] > 20
    assert all(o["confidence"] == 10 and "Stale" in o[f"custom.{segment}"] for o in after)
    assert set() == matching(fake_close, stale)


def test_sweep_examples_won_deals_get_date_won(recipes: Settings, fake_close: FakeClose) -> None:
    """02:30 New York: won deals without date_won get the New York day of their move to won,
    or, with no move on record, of their last change; dated won deals keep theirs."""
    at = datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    seed_aged(fake_close, count=2400, now=at, seed=22, weights=(80, 15, 5))
    moved = _won_by_a_person(fake_close, at=datetime(2026, 3, 3, 4, 10, tzinfo=UTC))
    undated = matching(fake_close, lambda o: o["status_type"] == "won" and not o["date_won"])

    run(recipes, "won-deals-get-date-won", at)

    by_day = {i: fake_close.opportunity(i)["date_won"] for i in undated}
    assert "2026-03-02" == by_day[moved]  # 23:10 on 2 March in New York
    assert all(day == _ny_day(fake_close, i) for i, day in by_day.items() if i != moved)
    assert set() == matching(fake_close, lambda o: o["status_type"] == "won" and not o["date_won"])


def _won_by_a_person(fake: FakeClose, *, at: datetime) -> str:
    """A deal a person moved to won at `at`, leaving date_won empty; its id."""
    oppo = fake.add_opportunity(confidence=50)
    fake.now = at
    fake.user_update(oppo["id"], {"status_id": fake.status_id("Won"), "date_won": None})
    fake.now = at + timedelta(days=2)
    fake.user_update(oppo["id"], {"confidence": 100})  # changed since: date_updated moves on
    fake.now = None
    return str(oppo["id"])


def _ny_day(fake: FakeClose, oppo_id: str) -> str:
    """The New York day of the deal's last change before dealkeeper's write."""
    ours = [e for e in fake.events if e["object_id"] == oppo_id]
    before = ours[0]["previous_data"]["date_updated"] if ours else None
    updated = datetime.fromisoformat(str(before))
    return updated.astimezone(NY).date().isoformat()


def test_sweep_examples_lost_deals_lose_confidence(
    recipes: Settings, fake_close: FakeClose
) -> None:
    """03:00 UTC: every lost deal above 0 % drops to 0; the others are not touched."""
    at = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
    seed_aged(fake_close, count=2400, now=at, seed=23, weights=(85, 10, 5))
    hopeful = matching(fake_close, lambda o: o["status_type"] == "lost" and o["confidence"] > 0)

    summary = run(recipes, "lost-deals-lose-confidence", at)

    assert (len(hopeful), set()) == (
        summary["queued"],
        matching(fake_close, lambda o: o["status_type"] == "lost" and o["confidence"] > 0),
    )
    assert sorted(hopeful) == sorted(
        e["object_id"] for e in fake_close.events if e["api_key_id"] == FakeClose.DEFAULT_API_KEY_ID
    )


def _field_id(fake: FakeClose, name: str) -> str:
    return str(next(f["id"] for f in fake.store.custom_fields.values() if f["name"] == name))
