"""A worker outlives Redis outages at any point of its life, and a killed worker's event is
taken back in seconds, whatever the job timeout.

Each test runs a whole cluster (tests/cluster.py) with its own persistent Redis, which is
stopped and started again under the worker, and ends with the final state of every
opportunity, the exact number of writes, and the worker process still the same one.
"""

from __future__ import annotations

import random
import signal
import time

from rq import Worker

from tests.cluster import Cluster
from tests.faults.test_faults import (
    NY_DATE,
    _busy_worker,
    assert_stamped,
    won_deals,
    writes_per_opportunity,
)
from tests.waiting import wait_for

# How long a test waits for the events to be applied: a job that Redis failed mid-way comes
# back after RQ's retry waits (5, 15, 30, 60 s, ...), several outages can stack them, and a
# busy 2-core machine slows everything; a worker that died would never get there at all.
SETTLE_SEC = 240.0
# Redis is restarted this many times under a working worker, at random moments.
RESTARTS = 8


def _alive_and_registered(cluster: Cluster, pid: int) -> bool:
    return cluster.workers[0].poll() is None and any(
        w.pid == pid for w in Worker.all(connection=cluster.redis)
    )


def test_a_worker_outlives_redis_restarts_at_any_moment(cluster: Cluster) -> None:
    """Redis stopped at random moments of a stream of events (waiting, heartbeat,
    suspension check, maintenance, a job, its bookkeeping) and started again: the same
    worker process goes on, and every event is applied exactly once."""
    cluster.start(workers=1)
    pid = cluster.workers[0].pid
    # Close takes a while to answer each write, so the worker is as often inside a job (and
    # its bookkeeping) as between jobs when Redis goes.
    cluster.fake.delay_next(1000, 0.3, method="PUT")
    chance = random.Random()
    every: list[str] = []
    for _ in range(RESTARTS):
        every += won_deals(cluster, 2)
        time.sleep(chance.uniform(0.0, 0.8))  # a random moment of the worker's life
        cluster.redis_server.stop()
        every += won_deals(cluster, 1)  # Close retries its delivery meanwhile
        time.sleep(chance.uniform(0.1, 1.5))  # an outage of random length
        cluster.redis_server.start()
    every += won_deals(cluster, 2)
    cluster.settle(timeout=SETTLE_SEC)

    # Listed whole again by its next heartbeat at the latest (an idle worker's comes every
    # WORKER_TTL - 15 = 45 s), should Redis have lost its registration.
    wait_for(lambda: _alive_and_registered(cluster, pid), what="the worker listed", timeout=90)
    assert_stamped(cluster, every)
    assert dict.fromkeys(every, 1) == writes_per_opportunity(cluster)


def test_a_job_whose_bookkeeping_redis_lost_is_applied_once(cluster: Cluster) -> None:
    """Redis goes away while Close holds the job's PUT: the write lands, its bookkeeping
    cannot. Once Redis is back the job runs again, finds the deal stamped, writes nothing."""
    cluster.start(workers=1)
    pid = cluster.workers[0].pid
    hold = cluster.fake.hold_next(method="PUT")
    (oppo_id,) = won_deals(cluster, 1)
    assert hold.wait_held(SETTLE_SEC)

    cluster.redis_server.stop()
    hold.release()
    wait_for(lambda: cluster.fake.opportunity(oppo_id)["confidence"] == 100,
             what="the held PUT to land")  # fmt: skip
    time.sleep(1.0)  # the job now fails to write its bookkeeping, and waits for Redis
    cluster.redis_server.start()
    later = won_deals(cluster, 1)
    cluster.settle(timeout=SETTLE_SEC)

    assert _alive_and_registered(cluster, pid)
    assert_stamped(cluster, [oppo_id, *later])
    assert {oppo_id: 1, later[0]: 1} == writes_per_opportunity(cluster)


def test_a_worker_started_while_redis_is_away_waits_for_it(cluster: Cluster) -> None:
    cluster.start_web()
    cluster.redis_server.stop()
    worker = cluster.start_worker()
    time.sleep(2.0)  # long enough to have failed its start without the wait
    cluster.redis_server.start()
    wait_for(lambda: _alive_and_registered(cluster, worker.pid), what="the worker to start",
             timeout=SETTLE_SEC)  # fmt: skip
    cluster.deliver()

    every = won_deals(cluster, 3)
    cluster.settle(timeout=SETTLE_SEC)

    assert_stamped(cluster, every)


def test_a_worker_stops_promptly_on_sigterm_while_redis_is_away(cluster: Cluster) -> None:
    """Stopping must not wait for Redis: Heroku kills a dyno 30 s after SIGTERM."""
    cluster.start(workers=1)
    cluster.redis_server.stop()
    wait_for(lambda: _noticed_redis_away(cluster), what="the worker to notice Redis is away")
    started = time.monotonic()
    cluster.workers[0].send_signal(signal.SIGTERM)
    code = cluster.workers[0].wait(timeout=30)

    assert (True, True) == (code in (0, -signal.SIGTERM), time.monotonic() - started < 10)
    cluster.redis_server.start()


def test_a_killed_workers_event_is_applied_within_seconds(cluster: Cluster) -> None:
    """SIGKILL the worker while Close holds its PUT and start another at once: the event is
    applied within seconds, not after the job timeout (5 minutes here), and once."""
    cluster.env.update(DEALKEEPER_JOB_TIMEOUT="300", CLOSE_READ_TIMEOUT="30")
    cluster.start(workers=1)
    hold = cluster.fake.hold_next(method="PUT")
    (oppo_id,) = won_deals(cluster, 1)
    assert hold.wait_held(SETTLE_SEC)
    busy = wait_for(lambda: _busy_worker(cluster), what="the worker holding the job")

    busy.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    cluster.start_worker()
    # The killed worker's PUT never reaches the deal (its connection is gone).
    cluster.fake.fail_next(1, status=503, method="PUT")
    hold.release()
    wait_for(lambda: _stamped(cluster, oppo_id), what="the event to be applied",
             timeout=SETTLE_SEC)  # fmt: skip
    recovered = time.monotonic() - killed

    # 15 s is the goal (bench soak reports it); the bound is generous for a busy machine,
    # and far below the 5 minutes a timeout-based recovery would take.
    assert recovered < 45, f"applied {recovered:.1f}s after the kill"
    assert_stamped(cluster, [oppo_id])
    assert {oppo_id: 1} == writes_per_opportunity(cluster)


def _noticed_redis_away(cluster: Cluster) -> bool:
    log = (cluster.folder / "worker0.log").read_text()
    return "redis_unavailable" in log or "could not connect to Redis" in log


def _stamped(cluster: Cluster, oppo_id: str) -> bool:
    state = cluster.fake.opportunity(oppo_id)
    return bool((state["date_won"], state["confidence"]) == (NY_DATE, 100))
