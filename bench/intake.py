"""Intake: signed webhooks acknowledged per second through gunicorn with the Procfile's settings,
against a bare Flask app that reads the body and answers 202 on identical settings.

    python3 dev.py bench intake [--seconds 10]

Both get the same load generator (wrk with a Lua script that signs every request, else a
Python generator) and 16 connections. dealkeeper's side verifies each signature, parses the
event and queues it (job and dedupe record in one MULTI/EXEC) in a Redis of its own; no
worker runs, so the queue only grows. Goal: ratio >= 0.6.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import (
    REPO,
    WEB_CONCURRENCY,
    Result,
    fmt_ratio,
    service_env,
    start_gunicorn,
    start_redis,
    stop,
)
from bench.loadgen import Load, generator_name, run_load

GOAL_RATIO = 0.6
WARMUP_SEC = 1.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench intake", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--web-concurrency", default=WEB_CONCURRENCY, help="gunicorn workers, for both apps"
    )
    return parser.parse_args(argv)


def measure(app: str, folder: Path, *, seconds: float, redis_url: str, workers: str) -> Load:
    """Start gunicorn on `app`, warm it up, load it for `seconds`, stop it."""
    env = service_env(redis_url, DEALKEEPER_RULES=str(REPO / "rules"), WEB_CONCURRENCY=workers)
    process, url = start_gunicorn(app, env, folder / f"{app.split('.')[1][:8]}.log")
    try:
        run_load(url + "/webhooks/close", seconds=WARMUP_SEC)
        return run_load(url + "/webhooks/close", seconds=seconds)
    finally:
        stop(process)


def run(seconds: float, web_concurrency: str = WEB_CONCURRENCY) -> Result:
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        folder = Path(name)
        server = start_redis(folder)
        try:
            bare, ours = (
                measure(app, folder, seconds=seconds, redis_url=server.url, workers=web_concurrency)
                for app in ("bench.bareapp:create_app()", "service.web:create_app()")
            )
        finally:
            server.stop()
    ratio = ours.per_sec / bare.per_sec if bare.per_sec else 0.0
    return Result(
        name="intake",
        figures={
            "load generator": f"{generator_name()}, 16 connections, {seconds:g} s each",
            "gunicorn sync workers": web_concurrency,
            "bare Flask req/s": round(bare.per_sec),
            "bare Flask p50 / p99 ms": f"{bare.p50_ms:.1f} / {bare.p99_ms:.1f}",
            "dealkeeper req/s": round(ours.per_sec),
            "dealkeeper p50 / p99 ms": f"{ours.p50_ms:.1f} / {ours.p99_ms:.1f}",
            "errors (bare, dealkeeper)": f"{bare.errors}, {ours.errors}",
            "ratio": round(ratio, 2),
        },
        ratio=f"dealkeeper/bare = {ours.per_sec:.0f}/{bare.per_sec:.0f} req/s = "
        f"{fmt_ratio(ratio)} (goal >= {GOAL_RATIO})",
        goals={"ratio >= 0.6": ratio >= GOAL_RATIO, "no errors": ours.errors == 0},
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
