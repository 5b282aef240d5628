"""Worker: events processed per second by one worker process, each needing one one-field
update against the fake Close with no rate limit, against RQ running no-op jobs on the same
worker class.

    python3 dev.py bench worker [--events 1000] [--rounds 3]

Both runs pre-fill the queue, then start `dealkeeper worker --burst` (RQ's SimpleWorker
subclass the Procfile runs); the time counted is from the first job's start to the last
job's end, as RQ records them, so process start-up is left out. Each dealkeeper event costs
the whole job: own-change check, plan, its turn, the per-opportunity lock, one GET (no
stale writes), the loop guard, one PUT, history and metrics. Goals: ratio >= 0.7 and
>= 250 events/s.

The runs take turns, round after round (the order reversed every other round), and the
median round is reported: on two shared cores, runs a minute apart differed by a quarter.

A third run queues jobs that make the same GET and PUT against the fake and nothing else
(bench.bareapp.get_and_put): the most any worker that re-reads before it writes can do
here. Its ratio to the no-op jobs is the ceiling for every such worker on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from bench.common import (
    UNLIMITED,
    Result,
    event_span_sec,
    fmt_ratio,
    job_span_sec,
    lift_rate_limits,
    median_round,
    one_field_env,
    start_redis,
    start_worker,
    take_turns,
)
from bench.events import enqueue_all, won_events
from fakeclose import FakeClose
from service.adapters.queue import make_queue

GOAL_RATIO = 0.7
GOAL_PER_SEC = 250.0
RUN_TIMEOUT_SEC = 240.0
# The baselines' jobs are kept, so their start and end can be read from their hashes: they
# pay for writing a result that dealkeeper's jobs (result TTL 0) do not.
BASELINE_RESULT_TTL_SEC = 3600


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench worker", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="per run")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Round:
    """One run of each kind of job, per second."""

    noop: float
    bare: float
    ours: float
    puts: int

    @property
    def ratio(self) -> float:
        return self.ours / self.noop if self.noop else 0.0


def drain(
    env: dict[str, str], connection: redis.Redis, log: Path, *, events: bool = False
) -> tuple[int, float]:
    """Run one burst worker until the queue is empty; (jobs finished, seconds they took),
    from the job hashes, or for dealkeeper's `events` (RQ keeps none of theirs) its log."""
    process = start_worker(env, log, burst=True)
    try:
        process.wait(timeout=RUN_TIMEOUT_SEC)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return event_span_sec(log) if events else job_span_sec(connection)


def noop_rate(
    folder: Path, connection: redis.Redis, env: dict[str, str], count: int
) -> tuple[float, int]:
    queue = make_queue(connection)
    with connection.pipeline() as pipe:
        for _ in range(count):
            queue.enqueue_call(
                "bench.bareapp.noop", result_ttl=BASELINE_RESULT_TTL_SEC, pipeline=pipe
            )
        pipe.execute()
    done, seconds = drain(env, connection, folder / "noop-worker.log")
    return (done / seconds if seconds else 0.0), 0


def bare_rate(
    folder: Path, connection: redis.Redis, env: dict[str, str], count: int
) -> tuple[float, int]:
    queue = make_queue(connection)
    with FakeClose() as fake:
        lift_rate_limits(fake)
        ids = [fake.add_opportunity(confidence=60)["id"] for _ in range(count)]
        with connection.pipeline() as pipe:
            for oppo_id in ids:
                queue.enqueue_call(
                    "bench.bareapp.get_and_put",
                    args=(fake.url, oppo_id),
                    result_ttl=BASELINE_RESULT_TTL_SEC,
                    pipeline=pipe,
                )
            pipe.execute()
        done, seconds = drain(env, connection, folder / "bare-worker.log")
        puts = len(fake.requests_matching("PUT", "opportunity/"))
    return (done / seconds if seconds else 0.0), puts


def event_rate(
    folder: Path, connection: redis.Redis, env: dict[str, str], count: int
) -> tuple[float, int]:
    with FakeClose() as fake:
        lift_rate_limits(fake)
        enqueue_all(connection, won_events(fake, count))
        done, seconds = drain(
            {**env, "CLOSE_API_URL": fake.url}, connection, folder / "worker.log", events=True
        )
        puts = len(fake.requests_matching("PUT", "opportunity/"))
    return (done / seconds if seconds else 0.0), puts


def run(events: int, rounds: int) -> Result:
    count = events
    taken = []
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        folder = Path(name)
        server = start_redis(folder)
        try:
            connection = redis.Redis.from_url(server.url)
            env = one_field_env(server.url, folder, CLOSE_RATE_LIMIT=str(UNLIMITED))
            kinds = {"noop": noop_rate, "bare": bare_rate, "ours": event_rate}

            def measure(kind: str) -> tuple[float, int]:
                connection.flushdb()
                return kinds[kind](folder, connection, env, count)

            runs = {kind: partial(measure, kind) for kind in kinds}
            for rates in take_turns(runs, rounds):
                taken.append(Round(rates["noop"][0], rates["bare"][0], *rates["ours"]))
        finally:
            server.stop()
    return report(count, taken)


def report(count: int, taken: list[Round]) -> Result:
    median = median_round(taken)
    baseline, bare, ours, ratio = median.noop, median.bare, median.ours, median.ratio
    ceiling = bare / baseline if baseline else 0.0
    return Result(
        name="worker",
        figures={
            "events per run, rounds": f"{count}, {len(taken)}",
            "ratio of each round": ", ".join(f"{r.ratio:.2f}" for r in taken),
            "RQ no-op jobs/s (same worker class)": round(baseline),
            "bare GET + PUT jobs/s": round(bare),
            "their ratio to no-op jobs: the ceiling": round(ceiling, 2),
            "dealkeeper events/s": round(ours),
            "dealkeeper / bare GET + PUT": round(ours / bare, 2) if bare else 0.0,
            "PUTs at the fake Close": median.puts,
            "ratio": round(ratio, 2),
        },
        ratio=f"dealkeeper/no-op = {ours:.0f}/{baseline:.0f} per s = {fmt_ratio(ratio)} "
        f"(goal >= {GOAL_RATIO}, and >= {GOAL_PER_SEC:.0f}/s); bare GET + PUT: "
        f"{fmt_ratio(ceiling)}",
        goals={
            "ratio >= 0.7": ratio >= GOAL_RATIO,
            ">= 250 events/s": ours >= GOAL_PER_SEC,
            "one PUT per event": all(r.puts == count for r in taken),
        },
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
