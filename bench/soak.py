"""Soak: thousands of webhooks through a whole cluster under chaos.

    python3 dev.py bench soak [--events 5000] [--workers 3] [--kill-every 3]
                              [--redis-restart-every 30] [--close-faults-every 10]
                              [--close-latency 0.1]

Starts a persistent Redis, the fake Close, gunicorn and several worker processes (the
fault-injection suite's cluster), makes one "moved to Won" change per opportunity, each
delivered as a signed webhook, with Close answering each request in --close-latency
seconds, and meanwhile, at random moments around each interval:
SIGKILLs a random worker and starts a new one in its place; stops Redis (persistent, as in
production) and starts it again after up to two seconds; makes Close answer slowly, or
with a burst of 5xx or 429s. At the end every opportunity must carry exactly one write by
dealkeeper. It reports events sent, answered 2xx, applied exactly once, applied twice,
lost, still queued, workers that exited on their own, and, for each killed worker that had
an event in hand, the delay from the kill to that event's write (p95 and max); and exits
non-zero unless nothing was lost or applied twice and no worker died on its own.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import redis
from rq import Worker

from fakeclose import FakeClose
from service.adapters.history import History
from service.adapters.queue import make_queue
from tests.cluster import Cluster, make_cluster

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)  # 22:30 on the 27th in New York
WON_DATE = "2026-11-27"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench soak", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds; 0: never")
    parser.add_argument("--redis-restart-every", type=float, default=30.0, help="seconds; 0: never")
    parser.add_argument("--close-faults-every", type=float, default=10.0, help="seconds; 0: never")
    parser.add_argument(
        "--close-latency",
        type=float,
        default=0.1,
        help="seconds Close takes to answer each request, as it does from a dyno",
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    return parser.parse_args(argv)


class Chaos(threading.Thread):
    """Does `act` at random moments, on average every `every` seconds."""

    def __init__(self, every: float, act: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.every, self.act = every, act
        self.count = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(random.uniform(0.5, 1.5) * self.every):
            self.act()
            self.count += 1


class Killer:
    """SIGKILLs a random worker and starts a new one; remembers which event it had in hand,
    and when that event was applied."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.killed: set[int] = set()
        self.in_hand: dict[str, float] = {}  # opportunity -> when its worker was killed
        self.recovered: list[float] = []  # seconds from a kill to its event's write

    def kill(self) -> None:
        alive = [w for w in self.cluster.workers if w.poll() is None]
        if not alive:
            return
        victim = random.choice(alive)
        holding = _opportunity_in_hand(self.cluster, victim.pid)
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        self.killed.add(victim.pid)
        if holding is not None and not _applied(self.cluster.fake, holding):
            self.in_hand[holding] = killed_at
        self.cluster.start_worker()

    def watch(self) -> None:
        """Note the events of killed workers that have been applied since."""
        for oppo_id, killed_at in list(self.in_hand.items()):
            if _applied(self.cluster.fake, oppo_id):
                self.recovered.append(time.monotonic() - killed_at)
                del self.in_hand[oppo_id]


def _opportunity_in_hand(cluster: Cluster, pid: int) -> str | None:
    try:
        connection = cluster.redis
        for worker in Worker.all(connection=connection):
            job_id = worker.get_current_job_id() if worker.pid == pid else None
            job = make_queue(connection).fetch_job(job_id) if job_id else None
            if job is not None:
                return str(job.args[0]["object_id"])
    except (redis.RedisError, LookupError, TypeError):
        return None  # Redis is away (another chaos), or no job: nothing to measure
    return None


def restart_redis(cluster: Cluster) -> None:
    cluster.redis_server.stop()
    time.sleep(random.uniform(0.2, 2.0))
    cluster.redis_server.start()


def close_fault(fake: FakeClose) -> None:
    """A burst of 5xx, of 429s with Close's headers, or slow answers."""
    count, kind = random.randint(2, 6), random.choice(("5xx", "429", "slow"))
    if kind == "5xx":
        fake.fail_next(count, status=random.choice((500, 502, 503, 504)))
    elif kind == "429":
        fake.fail_next(
            count,
            status=429,
            body={"error": "API rate limit exceeded.", "rate_reset": 1.0},
            headers={"retry-after": "1", "ratelimit": "limit=20, remaining=0, reset=1"},
        )
    else:
        fake.delay_next(count, random.uniform(0.5, 2.0), ahead=True)


def start_cluster(folder: Path, fake: FakeClose, workers: int) -> Cluster:
    cluster = make_cluster(folder, fake, LOG_LEVEL="WARNING", CLOSE_RATE_LIMIT="1000")
    return cluster.start(workers=workers)


def send(fake: FakeClose, count: int) -> list[str]:
    fake.now = WON_AT
    ids = [fake.add_opportunity(confidence=60)["id"] for _ in range(count)]
    won = fake.status_id("Won")
    for oppo_id in ids:
        fake.user_update(oppo_id, {"status_id": won})
    return ids


def report(
    cluster: Cluster, ids: list[str], *, killer: Killer, chaos: dict[str, Chaos], seconds: float
) -> dict[str, object]:
    writes: dict[str, int] = {}
    for event in cluster.our_writes():
        writes[event["object_id"]] = writes.get(event["object_id"], 0) + 1
    applied = {i for i in ids if _applied(cluster.fake, i)}
    people = {e["id"] for e in cluster.fake.events if e["api_key_id"] is None}
    delivered = [d for d in cluster.fake.deliveries if d.delivered and d.event_id in people]
    recovered = sorted(killer.recovered)
    return {
        "events_sent": len(ids),
        "answered_2xx": sum(1 for d in delivered if (d.last_status or 0) // 100 == 2),
        "applied_once": sum(1 for i in applied if writes.get(i, 0) == 1),
        "applied_twice": sum(1 for i in ids if writes.get(i, 0) > 1),
        "lost": len(ids) - len(applied),
        "still_queued": _still_queued(cluster),
        "workers_killed": len(killer.killed),
        "workers_died_alone": _died_alone(cluster, killer),
        "redis_restarts": chaos["redis"].count,
        "close_fault_bursts": chaos["close"].count,
        "kill_to_applied_n": len(recovered),
        "kill_to_applied_p95_sec": _percentile(recovered, 0.95),
        "kill_to_applied_max_sec": round(recovered[-1], 1) if recovered else None,
        "seconds": round(seconds, 1),
        "events_per_sec": round(len(ids) / seconds, 1),
    }


def explain_lost(cluster: Cluster, ids: list[str]) -> None:
    """For a lost event: what dealkeeper recorded of it, and its job, to find out why."""
    queue = make_queue(cluster.redis)
    for oppo_id in [i for i in ids if not _applied(cluster.fake, i)][:5]:
        events = [e["id"] for e in cluster.fake.events if e["object_id"] == oppo_id]
        deliveries = [d for d in cluster.fake.deliveries if d.event_id in events]
        listed = [
            *queue.job_ids,
            *queue.started_job_registry.get_job_ids(),
            *queue.scheduled_job_registry.get_job_ids(),
            *queue.failed_job_registry.get_job_ids(),
        ]
        jobs = [(j, queue.fetch_job(j)) for j in listed]
        mine = [
            (j, job.get_status()) for j, job in jobs if job and oppo_id in (job.description or "")
        ]
        history = History(cluster.redis).for_opportunity(oppo_id)
        print(f"lost {oppo_id}: deliveries {deliveries}, jobs {mine}, history {history}")


def _applied(fake: FakeClose, oppo_id: str) -> bool:
    state = fake.opportunity(oppo_id)
    return bool((state["date_won"], state["confidence"]) == (WON_DATE, 100))


def _still_queued(cluster: Cluster) -> int | None:
    """Jobs not yet ended: queued, scheduled for a retry, or running."""
    try:
        queue = make_queue(cluster.redis)
        listed = {
            *queue.job_ids,
            *queue.scheduled_job_registry.get_job_ids(),
            *queue.started_job_registry.get_job_ids(),
        }
        jobs = [queue.fetch_job(job_id) for job_id in listed]
        return sum(
            1 for job in jobs if job is not None and not job.is_finished and not job.is_failed
        )
    except redis.RedisError:
        return None


def _died_alone(cluster: Cluster, killer: Killer) -> int:
    """Workers that exited although nobody killed or stopped them (before the final stop)."""
    return sum(1 for w in cluster.workers if w.poll() is not None and w.pid not in killer.killed)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(share * len(values)))], 1)


def _settle(cluster: Cluster, killer: Killer, *, timeout: float) -> bool:
    """True when everything was delivered and processed in time; the figures say the rest."""
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(0.1):
            killer.watch()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        cluster.settle(timeout=timeout)
    except AssertionError:
        return False
    finally:
        watching.set()
        watcher.join()
        killer.watch()
    return True


def main(argv: list[str]) -> int:
    options = parse(argv)
    with tempfile.TemporaryDirectory(prefix="dealkeeper-soak-") as folder, FakeClose() as fake:
        cluster = start_cluster(Path(folder), fake, options.workers)
        if options.close_latency > 0:
            fake.delay_next(10**9, options.close_latency)
        killer = Killer(cluster)
        chaos = {
            "kill": Chaos(options.kill_every, killer.kill),
            "redis": Chaos(options.redis_restart_every, lambda: restart_redis(cluster)),
            "close": Chaos(options.close_faults_every, lambda: close_fault(fake)),
        }
        every = {"kill": options.kill_every, "redis": options.redis_restart_every,
                 "close": options.close_faults_every}  # fmt: skip
        started = time.monotonic()
        try:
            for name, thread in chaos.items():
                if every[name] > 0:
                    thread.start()
            ids = send(fake, options.events)
            settled = _settle(cluster, killer, timeout=options.timeout)
            for thread in chaos.values():
                thread.stopping.set()
                if thread.is_alive():
                    thread.join()
            if not cluster.redis_server.is_running():
                cluster.redis_server.start()
            settled = settled and _settle(cluster, killer, timeout=options.timeout)
            figures = report(
                cluster, ids, killer=killer, chaos=chaos, seconds=time.monotonic() - started
            )
            explain_lost(cluster, ids)
        finally:
            for thread in chaos.values():
                thread.stopping.set()
            cluster.stop()
            cluster.redis_server.stop()
        figures["settled"] = settled
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(json.dumps({"bench": "soak", **figures}))
    ok = (
        figures["settled"]
        and figures["lost"] == 0
        and figures["applied_twice"] == 0
        and figures["workers_died_alone"] == 0
    )
    return 0 if ok else 1
