"""Scheduled sweep runs end to end in this process: real Redis, real RQ SimpleWorkers and
the fake Close with 2,400 deals. Each deal to change becomes one job on the normal path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from service.adapters.history import History
from service.adapters.stats import Stats
from service.adapters.sweepstore import LOCK_PREFIX, SweepStore
from service.config.settings import Settings
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.schedule import run_scheduled_sweep
from service.processing.worker import make_worker
from tests.conftest import REPO
from tests.integration.sweeps_support import MOMENT, STALE_RULES, matching, moment_of, write_rules
from tests.waiting import wait_for

Deal = Mapping[str, Any]


# The stale-deals recipe, for deals quiet for 240 days: about 80 of the 2,400 (each is a
# job with a read and a write; what is tested does not need 600 of them).
QUIET_RULES = STALE_RULES.replace("older_than: 60d", "older_than: 240d")


def is_stale(o: Deal) -> bool:
    """What the rule asks of a deal at MOMENT, read from the fake's store."""
    quiet = moment_of(o, "date_updated") <= MOMENT - timedelta(days=240)
    return o["status_type"] == "active" and quiet and o["confidence"] > 10


@pytest.fixture
def paced(settings: Settings) -> Settings:
    """The test settings, pacing Close requests at 500/s: the fake's own limit is generous,
    and these tests are about what is written, not about waiting."""
    return settings.with_changes(tuning=replace(settings.tuning, close_rate_limit_per_sec=500.0))


@pytest.fixture
def stale(paced: Settings, fake_close: FakeClose, tmp_path: Path) -> Settings:
    """2,400 aged deals and the stale-deals sweep (240 days) as the rules in force."""
    seed_aged(fake_close, count=2400, now=MOMENT, seed=5)
    return paced.with_changes(rules_path=str(write_rules(tmp_path / "rules", QUIET_RULES)))


def sweep(settings: Settings, name: str = "stale-deals", **kwargs: Any) -> dict[str, Any]:
    """Run the sweep's scheduled job here, as a worker would (the job context installed)."""
    make_worker(settings)
    return run_scheduled_sweep(name, kwargs.pop("at", MOMENT).isoformat(), **kwargs)


def work(settings: Settings) -> None:
    make_worker(settings).work(burst=True, with_scheduler=False)


def written(fake: FakeClose) -> list[str]:
    """Ids of the deals dealkeeper's key changed, one entry per change Close recorded."""
    return [e["object_id"] for e in fake.events if e["api_key_id"] == FakeClose.DEFAULT_API_KEY_ID]


def test_sweep_run_writes_each_stale_deal_once_through_jobs(
    stale: Settings, fake_close: FakeClose, queue: Queue
) -> None:
    """The run lists the stale deals, queues one job each, and the workers write each once:
    10 % confidence and the Stale tag."""
    expected = matching(fake_close, is_stale)

    summary = sweep(stale)
    queued = queue.count
    work(stale)

    states = [fake_close.opportunity(i) for i in expected]
    assert (len(expected), sorted(expected)) == (queued, sorted(written(fake_close)))
    assert all(s["confidence"] == 10 and "Stale" in _segment(fake_close, s) for s in states)
    assert (len(expected), len(expected), 0) == (
        summary["matched"], summary["queued"], summary["already_correct"]
    )  # fmt: skip


def _segment(fake: FakeClose, deal: Deal) -> list[str]:
    field_id = next(f["id"] for f in fake.store.custom_fields.values() if f["name"] == "Segment")
    return list(deal.get(f"custom.{field_id}") or [])


def test_sweep_run_history_shows_the_sweep(
    stale: Settings, fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """A swept deal's history names the sweep's event and what was written."""
    some = sorted(matching(fake_close, is_stale))[0]

    sweep(stale)
    work(stale)
    (entry,) = History(redis_client).for_opportunity(some)

    assert ("opportunity.swept", "applied", ["stale-deals"], f"sweep-stale-deals-{some}") == (
        entry.event_type, entry.outcome, entry.fired, entry.event_id
    )  # fmt: skip


def test_sweep_run_rereads_each_deal_before_writing(stale: Settings, fake_close: FakeClose) -> None:
    """A deal someone works on after the listing is no longer stale, and one moved to won
    no longer active: their jobs write nothing; every other stale deal is written."""
    expected = sorted(matching(fake_close, is_stale))
    touched, won = expected[:2]

    sweep(stale)
    fake_close.now = MOMENT + timedelta(minutes=5)
    fake_close.user_update(touched, {"confidence": 60})
    fake_close.user_update(won, {"status_id": fake_close.status_id("Won")})
    work(stale)

    assert sorted(expected[2:]) == sorted(written(fake_close))
    assert 60 == fake_close.opportunity(touched)["confidence"]


def test_sweep_run_once_done_a_scheduled_time_queues_nothing_more(
    stale: Settings, queue: Queue
) -> None:
    """Running the job of a finished scheduled time again finds its checkpoint done."""
    sweep(stale)
    queued = queue.count

    again = sweep(stale)

    assert ({"done": True}, queued) == (again, queue.count)


def test_sweep_run_skips_a_time_its_schedule_does_not_name(stale: Settings, queue: Queue) -> None:
    """A run planned for a time the edited schedule no longer names is skipped, saying why."""
    result = sweep(stale, at=MOMENT + timedelta(hours=1))

    assert {"skipped": "its schedule (0 6 * * 1-5) no longer names this time"} == result
    assert 0 == queue.count


def test_sweep_run_under_close_rate_limits_completes_without_failures(
    paced: Settings,
    fake_close: FakeClose,
    tmp_path: Path,
    queue: Queue,
    redis_client: redis.Redis,
) -> None:
    """Close allows 10 reads and 10 writes a second, a fiftieth of the pace asked, and
    answers some requests 429: the pace follows Close's limit, the 429s are waited out,
    and every deal is still written once, nothing parked."""
    ids = seed_aged(fake_close, count=2400, now=MOMENT, seed=9)
    for oppo_id in ids[:20]:
        fake_close.store.opportunities[oppo_id].update(user_id="user_other", confidence=50)
    text = STALE_RULES.replace(
        "find: {status_type: active, date_updated: {older_than: 60d}}",
        "find: {user_id: user_other}",
    )
    limited = paced.with_changes(rules_path=str(write_rules(tmp_path / "r", text)))
    fake_close.set_rate_limit(10, group="read")
    fake_close.set_rate_limit(10, group="write")
    # Another integration spends the key's budget now and then: some answers are 429 anyway.
    retry = {"ratelimit": "limit=10, remaining=0, reset=0.2"}
    fake_close.fail_next(2, status=429, method="GET", path_prefix="opportunity/", headers=retry)
    fake_close.fail_next(2, status=429, method="PUT", headers=retry)

    sweep(limited)
    work(limited)

    assert (sorted(ids[:20]), 0) == (sorted(written(fake_close)), queue.failed_job_registry.count)
    assert 4 <= _rate_limited(redis_client)


KILLABLE = """\
import sys
from service.config.settings import Settings
from service.processing.sweeps.schedule import run_scheduled_sweep
from service.processing.worker import make_worker

make_worker(Settings.from_env())
run_scheduled_sweep(sys.argv[1], sys.argv[2])
"""


def _rate_limited(connection: redis.Redis) -> float:
    """How many 429 answers dealkeeper's processes counted."""
    found = [s.value for s in Stats(connection).samples() if s.name == "close_rate_limited_total"]
    return sum(found)


def test_sweep_run_killed_halfway_resumes_from_its_checkpoint(
    paced: Settings,
    fake_close: FakeClose,
    tmp_path: Path,
    queue: Queue,
    redis_client: redis.Redis,
) -> None:
    """A process running the sweep is SIGKILLed after its second page: the retried run goes
    on from the checkpoint (no first page again), each deal is queued once, written once."""
    seed_aged(fake_close, count=2400, now=MOMENT, seed=13)
    text = STALE_RULES.replace(", date_updated: {older_than: 60d}", "").replace(
        "confidence: {gt: 10}", "confidence: {gt: 80}\n      - value: {gt: 4500000}"
    )  # 8 pages of active deals, some 30 of them to write
    rules = write_rules(tmp_path / "rules", text)
    expected = matching(fake_close, _big_and_sure)
    fake_close.delay_next(3, 0.5, method="GET", path_prefix="opportunity/")  # pages 1 to 3

    process = _start_sweep(paced, rules)
    store, epoch = SweepStore(redis_client), int(MOMENT.timestamp())
    wait_for(
        lambda: (store.load("stale-deals", epoch=epoch) or {}).get("pages", 0) >= 2, what="2 pages"
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    redis_client.delete(LOCK_PREFIX + "stale-deals")  # it lapses when its holder is dead
    firsts_before = _first_pages(fake_close)
    sweep(paced.with_changes(rules_path=str(rules)))
    work(paced.with_changes(rules_path=str(rules)))

    progress = Progress.from_dict(store.load("stale-deals", epoch=epoch) or {})
    assert (1, True) == (firsts_before, progress.done)
    assert 1 == _first_pages(fake_close)
    assert (sorted(expected), len(expected)) == (
        sorted(written(fake_close)),
        progress.tally.to_update,
    )


def _big_and_sure(o: Deal) -> bool:
    return bool(o["status_type"] == "active" and o["confidence"] > 80 and o["value"] > 4500000)


def _start_sweep(settings: Settings, rules: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": str(settings.redis_url),
        "CLOSE_API_KEY": str(settings.close_api_key),
        "CLOSE_API_URL": settings.close_api_url,
        "DEALKEEPER_RULES": str(rules),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-c", KILLABLE, "stale-deals", MOMENT.isoformat()]
    return subprocess.Popen(command, env=env, cwd=REPO)


def _first_pages(fake: FakeClose) -> int:
    """Listing requests that started from the beginning (no cursor)."""
    pages = fake.requests_matching("GET", "opportunity/")
    return sum(1 for r in pages if r.path == "opportunity/" and "date_created__gte" not in r.query)
