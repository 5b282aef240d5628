"""Sweeps on schedule: which runs get planned, once across processes, through RQ's
scheduler; and the cron running once per time with two real workers (two schedulers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from service.adapters.sweepstore import SweepStore
from service.config.settings import Settings
from service.core.rules import RuleSet, load_rules
from service.processing.sweeps.schedule import current_rule, plan_runs, run_job_id, run_times
from service.processing.worker import make_worker
from tests.cluster import Cluster, make_cluster
from tests.integration.sweeps_support import MOMENT, sweep_rules, write_rules
from tests.waiting import wait_for


def rules(schedule: str, *, enabled: bool = True) -> RuleSet:
    text = sweep_rules("{status_type: active}").replace("'0 6 * * 1-5'", f"'{schedule}'")
    if not enabled:
        text = text.replace("    find:", "    enabled: false\n    find:")
    return load_rules(text, "rules/x.yaml")


def times(schedule: str, now: datetime, *, enabled: bool = True) -> list[str]:
    (rule,) = rules(schedule, enabled=enabled).rules
    return [t.isoformat() for t in run_times(rule, now=now)]


def test_sweep_schedule_plans_the_coming_runs_ten_minutes_ahead() -> None:
    """At 05:55 New York, the 06:00 run is planned; at 05:45 it is not yet."""
    five_to_six = MOMENT - timedelta(minutes=5)

    assert (["2026-03-09T10:00:00+00:00"], []) == (
        times("0 6 * * 1-5", five_to_six),
        times("0 6 * * 1-5", five_to_six - timedelta(minutes=10)),
    )


def test_sweep_schedule_plans_the_latest_run_missed_in_the_last_three_minutes() -> None:
    """A worker starting at 06:01 still runs 06:00's sweep; one starting at 06:04 does not."""
    assert (["2026-03-09T10:00:00+00:00"], []) == (
        times("0 6 * * 1-5", MOMENT + timedelta(minutes=1)),
        times("0 6 * * 1-5", MOMENT + timedelta(minutes=4)),
    )


def test_sweep_schedule_missed_runs_collapse_into_the_latest() -> None:
    """Every minute, at 12:00:30: the 12:00 run (not 11:58 and 11:59 too), then the next ten."""
    now = datetime(2026, 3, 9, 12, 0, 30, tzinfo=UTC)

    found = times("* * * * *", now)

    assert ["12:00", *(f"12:{m:02d}" for m in range(1, 11))] == [t[11:16] for t in found]


def test_sweep_schedule_disabled_rule_is_not_planned() -> None:
    """A sweep rule with enabled: false has no runs."""
    assert [] == times("* * * * *", MOMENT, enabled=False)


def test_sweep_schedule_run_is_planned_once_by_any_number_of_processes(
    redis_url: str, queue: Queue
) -> None:
    """Three processes plan at once: one job per scheduled time, in RQ's scheduled registry."""
    ruleset = rules("0 6 * * 1-5")
    stores = [SweepStore(redis.Redis.from_url(redis_url)) for _ in range(3)]
    now = MOMENT - timedelta(minutes=5)

    planned = [plan_runs(ruleset, store=store, now=now) for store in stores]
    for store in stores:
        store.connection.close()

    job_id = run_job_id("s", epoch=int(MOMENT.timestamp()), part=0)
    assert [[job_id], [], []] == planned
    assert [job_id] == queue.scheduled_job_registry.get_job_ids()


def test_sweep_schedule_job_ids_of_odd_names_stay_apart() -> None:
    """Names with characters RQ refuses in job ids get a hash, so two names stay two ids."""
    ids = {run_job_id(name, epoch=1, part=0) for name in ("a b", "a:b", "a_b")}

    assert (3, "sweep-a_b-1-0") == (len(ids), run_job_id("a_b", epoch=1, part=0))


def test_sweep_schedule_run_of_a_removed_or_disabled_rule_is_skipped() -> None:
    """A planned run whose rule is gone or disabled by then is skipped, saying why."""
    assert [
        (None, "no sweep rule of that name is in force"),
        (None, "the rule is disabled"),
    ] == [
        current_rule(rules("0 6 * * *"), name="other", moment=MOMENT, first=True),
        current_rule(rules("0 6 * * *", enabled=False), name="s", moment=MOMENT, first=True),
    ]


def test_sweep_schedule_worker_maintenance_plans_the_sweeps(
    settings: Settings, tmp_path: Path, queue: Queue
) -> None:
    """A worker plans the sweeps of its rules at every maintenance round."""
    folder = write_rules(
        tmp_path / "rules", sweep_rules("{}").replace("'0 6 * * 1-5'", "'* * * * *'")
    )
    worker = make_worker(settings.with_changes(rules_path=str(folder)))

    worker.run_maintenance_tasks()

    assert 11 <= queue.scheduled_job_registry.count <= 12


# Once an hour, at the minute the test starts: the run is due at once (a worker plans the
# latest run of the last three minutes), and no second run can fall within the test, as
# one every minute did whenever the test crossed a minute's end (about one run in twenty).
THIS_MINUTE = """\
rules:
  - name: this-minute
    schedule: "MINUTE * * * *"
    find: {user_id: user_other}
    if:
      - confidence: {gt: 10}
    then:
      - set: {confidence: 10}
"""


# A run lists 2,400 deals and writes 20 of them, with worker processes starting: a few
# seconds on an idle machine; this bound is for a busy 2-core one.
BUSY_SEC = 90.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The fake Close with 2,400 deals (20 owned by user_other) and two real worker
    processes, each with RQ's scheduler, sharing a Redis of their own."""
    with FakeClose() as fake:
        ids = seed_aged(fake, count=2400, now=datetime.now(UTC), seed=41)
        for oppo_id in ids[:20]:
            fake.store.opportunities[oppo_id].update(user_id="user_other", confidence=50)
        minute = datetime.now(UTC).minute  # the rule's zone: UTC, as no zone is given
        rules_dir = write_rules(tmp_path / "rules", THIS_MINUTE.replace("MINUTE", str(minute)))
        running = make_cluster(tmp_path, fake, DEALKEEPER_RULES=str(rules_dir))
        try:
            yield running
        finally:
            running.stop()
            print(running.logs())
            running.redis_server.stop()


@pytest.mark.timeout(4 * BUSY_SEC)
def test_sweep_schedule_cron_runs_once_with_two_schedulers_alive(
    cluster: Cluster, connection: redis.Redis
) -> None:
    """A worker plans and runs the due sweep; a second worker (a second scheduler) starts
    after and plans the same due time again: it still ran once, each deal written once."""
    store = SweepStore(connection)
    first = cluster.start_worker()
    wait_for(lambda: store.runs("this-minute"), what="the first run to finish", timeout=BUSY_SEC)
    second = cluster.start_worker()
    wait_for(lambda: _listening(connection, "w1-"), what="the second worker to plan",
             timeout=BUSY_SEC)  # fmt: skip
    wait_for(lambda: _idle(connection), what="the jobs due to finish", timeout=BUSY_SEC)
    runs = store.runs("this-minute")
    writes = [w["object_id"] for w in cluster.our_writes()]

    assert len(runs) == len({r["at"] for r in runs})
    assert ([20], 20, 20) == (
        [r["queued"] for r in runs if r["queued"]],
        len(writes),
        len(set(writes)),
    )
    assert (None, None) == (first.poll(), second.poll())


@pytest.fixture
def connection(cluster: Cluster) -> Iterator[redis.Redis]:
    """One client of the cluster's Redis for the test."""
    client = cluster.redis
    yield client
    client.close()


def _listening(connection: redis.Redis, prefix: str) -> bool:
    """True once the worker has passed its first maintenance (where it plans sweeps) and
    waits for jobs."""
    found = [w for w in Worker.all(connection=connection) if w.name.startswith(prefix)]
    return any(
        str(getattr(s, "value", s)) in ("idle", "busy") for s in (w.get_state() for w in found)
    )


def _idle(connection: redis.Redis) -> bool:
    """Nothing queued or running, and nothing scheduled that is due."""
    queue = Queue("dealkeeper", connection=connection)
    due = queue.scheduled_job_registry.get_jobs_to_schedule(int(datetime.now(UTC).timestamp()))
    return queue.count == 0 and queue.started_job_registry.count == 0 and not due
