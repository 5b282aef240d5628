"""Latency: from a webhook's POST to the matching PUT arriving at the fake Close, p50 and p99,
at a steady 50 events per second, against the least any webhook-to-PUT path on this stack
does (a bare Flask app queueing one RQ job that makes one PUT).

    python3 dev.py bench latency [--seconds 10] [--rate 50]

Both sides run the Procfile's processes: gunicorn (2 gevent workers) and one `dealkeeper
worker`. Every event needs one write, and 50 writes a second is more than Close allows one
API key, so neither side is rate-limited here: the figure is dealkeeper's own delay. Goals:
p50 < 50 ms, p99 < 250 ms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import requests
from rq import Worker

from bench.common import (
    UNLIMITED,
    Result,
    fmt_ratio,
    lift_rate_limits,
    one_field_env,
    percentile,
    start_gunicorn,
    start_redis,
    start_worker,
    stop,
    wait_until,
)
from bench.events import post_webhook, won_events
from fakeclose import FakeClose

GOAL_P50_MS = 50.0
GOAL_P99_MS = 250.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench latency", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    return parser.parse_args(argv)


def send_steadily(url: str, events: list[dict[str, Any]], rate: float) -> dict[str, float]:
    """POST each event at its moment (start + i / rate); opportunity id -> when it was sent."""
    sent: dict[str, float] = {}
    session = requests.Session()
    started = time.monotonic()
    for number, event in enumerate(events):
        delay = started + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[event["object_id"]] = time.monotonic()
        status = post_webhook(session, url, event)
        if status >= 300:
            raise RuntimeError(f"webhook answered {status}")
    return sent


def latencies(fake: FakeClose, sent: dict[str, float]) -> list[float]:
    """Milliseconds from each POST to the PUT of its opportunity reaching the fake."""
    arrived = {r.path.split("/")[1]: r.received_at for r in fake.requests_matching("PUT")}
    return [(arrived[oppo] - at) * 1000 for oppo, at in sent.items() if oppo in arrived]


def measure(folder: Path, app: str, path: str, *, seconds: float, rate: float) -> list[float]:
    """Start Redis, gunicorn on `app` and one worker; send; return the latencies (ms)."""
    count = round(seconds * rate)
    server = start_redis(folder)
    web = worker = None
    try:
        with FakeClose() as fake:
            lift_rate_limits(fake)
            env = one_field_env(
                server.url, folder, CLOSE_API_URL=fake.url, CLOSE_RATE_LIMIT=str(UNLIMITED)
            )
            web, url = start_gunicorn(app, env, folder / "web.log")
            worker = start_worker(env, folder / "worker.log")
            connection = redis.Redis.from_url(server.url)
            wait_until(lambda: Worker.count(connection=connection) >= 1, what="worker", timeout=30)
            events = won_events(fake, count)
            sent = send_steadily(url + path, events, rate)
            wait_until(lambda: len(fake.requests_matching("PUT")) >= count, what="PUTs", timeout=60)
            return latencies(fake, sent)
    finally:
        stop(web, worker)
        server.stop()


def run(seconds: float, rate: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        base = measure(
            Path(name) / "bare", "bench.bareapp:create_app()", "/relay", seconds=seconds, rate=rate
        )
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        ours = measure(
            Path(name) / "ours",
            "service.web:create_app()",
            "/webhooks/close",
            seconds=seconds,
            rate=rate,
        )
    p50, p99 = percentile(ours, 50), percentile(ours, 99)
    b50, b99 = percentile(base, 50), percentile(base, 99)
    return Result(
        name="latency",
        figures={
            "events, rate": f"{len(ours)}, {rate:g}/s",
            "bare relay p50 / p99 ms": f"{b50:.1f} / {b99:.1f}",
            "dealkeeper p50 / p99 ms": f"{p50:.1f} / {p99:.1f}",
        },
        ratio=f"dealkeeper/bare p50 = {p50:.1f}/{b50:.1f} ms = {fmt_ratio(p50 / b50)}, "
        f"p99 = {p99:.1f}/{b99:.1f} ms = {fmt_ratio(p99 / b99)} "
        f"(goals p50 < {GOAL_P50_MS:g} ms, p99 < {GOAL_P99_MS:g} ms)",
        goals={"p50 < 50 ms": p50 < GOAL_P50_MS, "p99 < 250 ms": p99 < GOAL_P99_MS},
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
