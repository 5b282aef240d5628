"""Soak: thousands of webhooks through a whole cluster while workers are killed.

    python3 dev.py bench soak [--events 5000] [--workers 3] [--kill-every 3]

Starts a persistent Redis, the fake Close, gunicorn and several worker processes (the
fault-injection suite's cluster), makes one "moved to Won" change per opportunity, each
delivered as a signed webhook, and SIGKILLs a random worker every few seconds, starting a
new one in its place. At the end every opportunity must carry exactly one write by
dealkeeper: it reports events sent, applied, lost (must be 0) and duplicated (must be 0),
and exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from service.fakeclose import FakeClose
from tests.cluster import Cluster, make_cluster

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)  # 22:30 on the 27th in New York
WON_DATE = "2026-11-27"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench soak", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds; 0: never")
    parser.add_argument("--timeout", type=float, default=900.0)
    return parser.parse_args(argv)


class Killer(threading.Thread):
    """SIGKILLs a random worker every `every` seconds and starts a new one."""

    def __init__(self, cluster: Cluster, every: float) -> None:
        super().__init__(daemon=True)
        self.cluster, self.every = cluster, every
        self.kills = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            alive = [w for w in self.cluster.workers if w.poll() is None]
            if not alive:
                continue
            random.choice(alive).send_signal(signal.SIGKILL)
            self.kills += 1
            self.cluster.start_worker()


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


def report(cluster: Cluster, ids: list[str], *, kills: int, seconds: float) -> dict[str, object]:
    writes: dict[str, int] = {}
    for event in cluster.our_writes():
        writes[event["object_id"]] = writes.get(event["object_id"], 0) + 1
    applied = [
        i
        for i in ids
        if (cluster.fake.opportunity(i)["date_won"], cluster.fake.opportunity(i)["confidence"])
        == (WON_DATE, 100)
    ]
    return {
        "events_sent": len(ids),
        "applied": len(applied),
        "lost": len(ids) - len(applied),
        "duplicated": sum(1 for i in ids if writes.get(i, 0) > 1),
        "workers_killed": kills,
        "seconds": round(seconds, 1),
        "events_per_sec": round(len(ids) / seconds, 1),
    }


def _settle(cluster: Cluster, *, timeout: float) -> bool:
    """True when everything was delivered and processed in time; the figures say the rest."""
    try:
        cluster.settle(timeout=timeout)
    except AssertionError:
        return False
    return True


def main(argv: list[str]) -> int:
    options = parse(argv)
    with tempfile.TemporaryDirectory(prefix="dealkeeper-soak-") as folder, FakeClose() as fake:
        cluster = start_cluster(Path(folder), fake, options.workers)
        killer = Killer(cluster, options.kill_every)
        started = time.monotonic()
        try:
            if options.kill_every > 0:
                killer.start()
            ids = send(fake, options.events)
            settled = _settle(cluster, timeout=options.timeout)
        finally:
            killer.stopping.set()
            cluster.stop()
            cluster.redis_server.stop()
        figures = report(cluster, ids, kills=killer.kills, seconds=time.monotonic() - started)
        figures["settled"] = settled
    for key, value in figures.items():
        print(f"{key:>16}: {value}")
    print(json.dumps({"bench": "soak", **figures}))
    ok = figures["settled"] and figures["lost"] == 0 and figures["duplicated"] == 0
    return 0 if ok else 1
