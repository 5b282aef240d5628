"""Redis: bytes each event leaves once done (finished, parked, history) beside its dedupe
record, the floor every event pays for 4 days; and what that makes a day's events cost.

    python3 dev.py bench redis [--deals 200] [--per-deal 10] [--parked 200]

Three `dealkeeper worker` processes apply the events (real Redis, the fake Close). Each deal
is moved to won (one PUT) and then edited `per-deal - 1` times (no rule acts: no call);
then `parked` deals get a value Close refuses to tag (400: parked). The finished events are
queued before the workers start, so what a queued event holds is measured too. Bytes are
Redis's own count (MEMORY USAGE of every key, service/adapters/footprint.py) after less before.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rq import Worker

from bench.common import (
    API_KEY,
    ONE_FIELD_RULES,
    UNLIMITED,
    Result,
    lift_rate_limits,
    service_env,
    start_redis,
    start_worker,
    stop,
    wait_until,
    write_rules,
)
from bench.events import enqueue_all
from fakeclose import FakeClose
from service.adapters.footprint import bytes_by_kind
from service.adapters.history import (
    HISTORY_MAX_OPPORTUNITIES,
    HISTORY_PER_OPPORTUNITY,
    HISTORY_TTL_SEC,
)
from service.adapters.queue import make_queue
from service.adapters.stats import Stats
from service.config import defaults

WORKERS = 3
# Kinds an event leaves beside its dedupe record and history (service/adapters/footprint.py).
LEFT_BY_A_JOB = ("jobs", "own writes", "loop guard", "ordering", "locks")
GOAL_FINISHED_BYTES = 1024
VOLUMES = (1_000, 10_000, 50_000, 100_000)
DAY_SEC = 24 * 3600
MB = 1_000_000
RULES = (
    ONE_FIELD_RULES
    + """\
  - name: tag-big-deals
    trigger: opportunity.updated
    if:
      - value: {gte: 1000000}
      - custom.Segment: {not_contains: Enterprise}
    then:
      - add: {custom.Segment: Enterprise}
"""
)
START = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench redis", description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--per-deal", type=int, default=10)
    parser.add_argument("--parked", type=int, default=200)
    return parser.parse_args(argv)


@dataclass(frozen=True)
class PerEvent:
    """Bytes per event, by kind."""

    finished: dict[str, float]
    parked: dict[str, float]
    queued: dict[str, float]

    @property
    def dedupe(self) -> float:
        return self.finished.get("dedupe", 0.0)

    @property
    def history(self) -> float:
        return self.finished.get("history", 0.0)

    @property
    def left_by_job(self) -> float:
        return sum(self.finished.get(kind, 0.0) for kind in LEFT_BY_A_JOB)

    @property
    def parked_job(self) -> float:
        return self.parked.get("jobs", 0.0)

    @property
    def queued_beside_dedupe(self) -> float:
        """What a queued event holds until a worker takes it (its job, its place in its
        deal's order): the backlog a Close or worker outage leaves costs this much."""
        return sum(v for k, v in self.queued.items() if k not in ("dedupe", "shared"))


def measure(folder: Path, *, deals: int, per_deal: int, parked: int) -> PerEvent:
    server = start_redis(folder)
    workers: list[Any] = []
    try:
        with FakeClose() as fake:
            lift_rate_limits(fake)
            fake.add_custom_field(
                "Segment", type="choices", accepts_multiple_values=True, choices=["SMB"]
            )
            env = service_env(
                server.url,
                CLOSE_API_KEY=API_KEY,
                CLOSE_API_URL=fake.url,
                CLOSE_RATE_LIMIT=str(UNLIMITED),
                DEALKEEPER_RULES=str(write_rules(folder, RULES)),
            )
            connection = redis.Redis.from_url(server.url)
            finished = _events(fake, deals, per_deal)
            refused = _refused(fake, parked)
            # Queued before any worker runs: what a backlog holds per event.
            before = bytes_by_kind(connection)
            enqueue_all(connection, finished)
            queued = _per_event(before, bytes_by_kind(connection), len(finished))
            workers = [start_worker(env, folder / f"worker{n}.log") for n in range(WORKERS)]
            wait_until(
                lambda: Worker.count(connection=connection) >= WORKERS, what="workers", timeout=60
            )
            # Generous: 3 workers on a shared 2-core machine manage a few hundred events a second.
            wait_until(lambda: _done(connection) >= len(finished), what="the events", timeout=900)
            return PerEvent(
                finished=_per_event(before, bytes_by_kind(connection), len(finished)),
                parked=_delta(connection, refused, done=lambda: _parked(connection) >= parked),
                queued=queued,
            )
    finally:
        stop(*workers)
        server.stop()


def _events(fake: FakeClose, deals: int, per_deal: int) -> list[dict[str, Any]]:
    won = fake.status_id("Won")
    events = []
    for _ in range(deals):
        oppo = fake.add_opportunity(confidence=60, value=1000)
        fake.now = START
        events.append(fake.user_update(oppo["id"], {"status_id": won}))
        for n in range(per_deal - 1):
            fake.now = START + timedelta(minutes=n + 1)
            events.append(fake.user_update(oppo["id"], {"value": 2000 + n}))
    return [e for e in events if e is not None]


def _refused(fake: FakeClose, count: int) -> list[dict[str, Any]]:
    events = []
    for _ in range(count):
        oppo = fake.add_opportunity(value=500000)
        events.append(fake.user_update(oppo["id"], {"value": 1500000}))
    return [e for e in events if e is not None]


def _delta(connection: redis.Redis, events: list[dict[str, Any]], *, done: Any) -> dict[str, float]:
    before = bytes_by_kind(connection)
    enqueue_all(connection, events)
    # Generous: 3 workers on a shared 2-core machine manage a few hundred events a second.
    wait_until(done, what="the events", timeout=900)
    after = bytes_by_kind(connection)
    return _per_event(before, after, len(events))


def _per_event(before: dict[str, int], after: dict[str, int], count: int) -> dict[str, float]:
    return {k: (after.get(k, 0) - before.get(k, 0)) / count for k in after.keys() | before}


def _done(connection: redis.Redis) -> int:
    samples = Stats(connection).samples()
    return int(sum(s.value for s in samples if s.name == "events_total"))


def _parked(connection: redis.Redis) -> int:
    return int(make_queue(connection).failed_job_registry.count)


def sizing(per: PerEvent, events_per_day: int) -> float:
    """Redis bytes held at `events_per_day`, steady: dedupe records and own-write receipts
    for their 4 days, history for its 30 (up to its cap), a full parked store."""
    days = defaults.DEDUPE_TTL_SEC / DAY_SEC
    kept_4_days = events_per_day * days * (per.dedupe + per.finished.get("own writes", 0.0))
    history_cap = HISTORY_MAX_OPPORTUNITIES * HISTORY_PER_OPPORTUNITY
    history_events = min(events_per_day * HISTORY_TTL_SEC / DAY_SEC, history_cap)
    hour = events_per_day / 24 * per.finished.get("loop guard", 0.0)
    return kept_4_days + history_events * per.history + hour + defaults.PARKED_MAX * per.parked_job


def run(deals: int, per_deal: int, parked: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        per = measure(Path(name), deals=deals, per_deal=per_deal, parked=parked)
    figures: dict[str, Any] = {
        "finished event, bytes beside dedupe and history": f"{per.left_by_job:.0f}",
        "  by kind": {k: round(v) for k, v in sorted(per.finished.items()) if k in LEFT_BY_A_JOB},
        "dedupe record (the floor), bytes": f"{per.dedupe:.0f}",
        f"history, bytes per event ({per_deal} events a deal)": f"{per.history:.0f}",
        "parked event, bytes (its job and reason)": f"{per.parked_job:.0f}",
        "queued event, bytes beside dedupe (until taken)": f"{per.queued_beside_dedupe:.0f}",
        "shared (counters, workers), bytes per event": f"{per.finished.get('shared', 0):.0f}",
    }
    for volume in VOLUMES:
        figures[f"Redis at {volume:,} events a day, MB"] = f"{sizing(per, volume) / MB:.0f}"
    floor = per.dedupe or 1.0
    return Result(
        name="redis",
        figures=figures,
        ratio=f"a finished event leaves {per.left_by_job:.0f} B beside its dedupe record "
        f"({per.dedupe:.0f} B, x{per.left_by_job / floor:.2f}) and history ({per.history:.0f} B); "
        f"a parked one {per.parked_job:.0f} B (x{per.parked_job / floor:.1f})",
        goals={"finished <= 1 KB": per.left_by_job <= GOAL_FINISHED_BYTES},
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
