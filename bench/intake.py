"""Intake: signed webhooks acknowledged per second through gunicorn with the Procfile's settings,
against a bare Flask app that reads the body and answers 202 on identical settings.

    python3 dev.py bench intake [--seconds 5] [--rounds 3]

Both get the same load generator (wrk with a Lua script that signs every request, else a
Python generator) and 16 connections. dealkeeper's side verifies each signature, parses the
event and queues it (job, dedupe record, pending list and counters in one Lua call) in a
Redis of its own; no worker runs, so the queue only grows.

Both apps run side by side and take the load in turns, round after round (the order
swapped every round): on a machine whose cores other work shares, a ratio of two runs
minutes apart measures that work as much as the apps. Each round gives a ratio; the
median round is reported. Goal: ratio >= 0.6.

A third load goes to the bare app's /webhooks/durable, which appends the body to a Redis
list before its 202: the least any intake does that answers only once the event is safe.
Its ratio to the bare app is the ceiling for every such intake on this machine, and
dealkeeper's ratio to it shows what verifying, parsing, dedupe and RQ's job format cost.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import (
    REPO,
    WEB_CONCURRENCY,
    Result,
    fmt_ratio,
    median_round,
    service_env,
    start_gunicorn,
    start_redis,
    stop,
    take_turns,
)
from bench.loadgen import Load, generator_name, run_load

GOAL_RATIO = 0.6
WARMUP_SEC = 1.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench intake", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per app, per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--web-concurrency", default=WEB_CONCURRENCY, help="gunicorn workers, for both apps"
    )
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Round:
    """One turn of load on each app."""

    bare: Load
    durable: Load
    ours: Load

    @property
    def ratio(self) -> float:
        return _ratio(self.ours, self.bare)


def _ratio(load: Load, baseline: Load) -> float:
    return load.per_sec / baseline.per_sec if baseline.per_sec else 0.0


@contextmanager
def serving(app: str, folder: Path, *, redis_url: str, workers: str) -> Iterator[str]:
    """gunicorn on `app`, warmed up; yields its webhook URL."""
    env = service_env(redis_url, DEALKEEPER_RULES=str(REPO / "rules"), WEB_CONCURRENCY=workers)
    process, url = start_gunicorn(app, env, folder / f"{app.split('.')[1][:8]}.log")
    try:
        run_load(url + "/webhooks/close", seconds=WARMUP_SEC)
        yield url + "/webhooks/close"
    finally:
        stop(process)


def load_in_turns(bare_url: str, ours_url: str, *, seconds: float, rounds: int) -> list[Round]:
    """Load the bare app, the Redis-writing app and dealkeeper in turns, `rounds` times."""
    durable_url = bare_url.replace("/webhooks/close", "/webhooks/durable")
    urls = {"bare": bare_url, "durable": durable_url, "ours": ours_url}
    runs = {name: partial(run_load, url, seconds=seconds) for name, url in urls.items()}
    return [Round(**loads) for loads in take_turns(runs, rounds)]


def run(seconds: float, rounds: int, web_concurrency: str = WEB_CONCURRENCY) -> Result:
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        folder = Path(name)
        server = start_redis(folder)
        try:
            url, workers = server.url, web_concurrency
            with (
                serving(
                    "bench.bareapp:create_app()", folder, redis_url=url, workers=workers
                ) as bare_url,
                serving(
                    "service.web:create_app()", folder, redis_url=url, workers=workers
                ) as ours_url,
            ):
                taken = load_in_turns(bare_url, ours_url, seconds=seconds, rounds=rounds)
        finally:
            server.stop()
    median = median_round(taken)
    bare, durable, ours, ratio = median.bare, median.durable, median.ours, median.ratio
    return Result(
        name="intake",
        figures={
            "load generator": f"{generator_name()}, 16 connections",
            "rounds, seconds per app per round": f"{rounds}, {seconds:g}",
            "gunicorn gevent workers": web_concurrency,
            "ratio of each round": ", ".join(f"{r.ratio:.2f}" for r in taken),
            "median round: bare Flask req/s": round(bare.per_sec),
            "bare Flask p50 / p99 ms": f"{bare.p50_ms:.1f} / {bare.p99_ms:.1f}",
            "bare Flask + one Redis write req/s": round(durable.per_sec),
            "its ratio to bare Flask: the ceiling": round(_ratio(durable, bare), 2),
            "dealkeeper req/s": round(ours.per_sec),
            "dealkeeper p50 / p99 ms": f"{ours.p50_ms:.1f} / {ours.p99_ms:.1f}",
            "errors (bare, dealkeeper), all rounds": (
                f"{sum(r.bare.errors for r in taken)}, {sum(r.ours.errors for r in taken)}"
            ),
            "dealkeeper / bare + one Redis write": round(_ratio(ours, durable), 2),
            "ratio": round(ratio, 2),
        },
        ratio=f"dealkeeper/bare = {ours.per_sec:.0f}/{bare.per_sec:.0f} req/s = "
        f"{fmt_ratio(ratio)} (median of {rounds} rounds; goal >= {GOAL_RATIO}); "
        f"bare + one Redis write: {fmt_ratio(_ratio(durable, bare))}",
        goals={
            "ratio >= 0.6": ratio >= GOAL_RATIO,
            "no errors": all(r.ours.errors == 0 for r in taken),
        },
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
