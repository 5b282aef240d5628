"""Memory: resident memory of the web processes and the worker processes before and after
10,000 events, against the bare Flask app and RQ no-op jobs on the same stack.

    python3 dev.py bench memory [--events 10000]

gunicorn (the Procfile's settings, 2 gevent workers) takes every event as a signed webhook
and three `dealkeeper worker` processes apply them (one PUT each) against the fake Close.
"Before" is measured after a warm-up of 200 events, so start-up caches are not counted as
growth. Goal: growth under 10% in every process.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
import requests
from rq import Worker

from bench.common import (
    KEY_HEX,
    UNLIMITED,
    Result,
    children,
    lift_rate_limits,
    one_field_env,
    rss_mib,
    start_gunicorn,
    start_redis,
    start_worker,
    stop,
    wait_until,
)
from bench.events import post_webhook, won_events
from bench.loadgen import webhook_body
from fakeclose import FakeClose
from service.adapters.queue import make_queue
from service.adapters.stats import Stats
from service.intake.signatures import signed_headers

GOAL_GROWTH = 0.10
WARMUP = 200
WORKERS = 3
SENDERS = 4


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench memory", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    return parser.parse_args(argv)


def send_all(url: str, bodies: list[Any]) -> None:
    """POST every item from SENDERS threads; an item is an event dict or raw bytes."""
    chunks = [bodies[n::SENDERS] for n in range(SENDERS)]

    def send(chunk: list[Any]) -> None:
        session = requests.Session()
        for item in chunk:
            status = (
                post_webhook(session, url, item)
                if isinstance(item, dict)
                else _post_raw(session, url, item)
            )
            if status >= 300:
                raise RuntimeError(f"webhook answered {status}")

    threads = [threading.Thread(target=send, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)


def _post_raw(session: requests.Session, url: str, body: bytes) -> int:
    headers = {"content-type": "application/json"}
    headers.update(signed_headers(body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())))
    return session.post(url, data=body, headers=headers, timeout=10).status_code


def finished(connection: redis.Redis, count: int) -> bool:
    """No-op jobs are kept in RQ's finished registry; dealkeeper's events are counted."""
    events = sum(s.value for s in Stats(connection).samples() if s.name == "events_total")
    return int(connection.zcard("rq:finished:dealkeeper")) + events >= count


def rss(web: Any, workers: list[Any]) -> dict[str, float]:
    found = {f"web {n}": rss_mib(pid) for n, pid in enumerate(children(web.pid))}
    found.update({f"worker {n}": rss_mib(w.pid) for n, w in enumerate(workers)})
    return found


def measure(folder: Path, *, bare: bool, count: int) -> tuple[dict[str, float], dict[str, float]]:
    """RSS (MiB) per process after the warm-up and after `count` more events."""
    server = start_redis(folder)
    web, workers = None, []
    try:
        with FakeClose() as fake:
            lift_rate_limits(fake)
            env = one_field_env(
                server.url, folder, CLOSE_API_URL=fake.url, CLOSE_RATE_LIMIT=str(UNLIMITED)
            )
            app = "bench.bareapp:create_app()" if bare else "service.web:create_app()"
            web, url = start_gunicorn(app, env, folder / "web.log")
            workers = [start_worker(env, folder / f"worker{n}.log") for n in range(WORKERS)]
            connection = redis.Redis.from_url(server.url)
            wait_until(
                lambda: Worker.count(connection=connection) >= WORKERS, what="workers", timeout=30
            )
            items = _items(fake, WARMUP + count, bare=bare)
            processes = (web, workers)
            before = _run(url, items[:WARMUP], connection, WARMUP, bare=bare, processes=processes)
            after = _run(
                url, items[WARMUP:], connection, WARMUP + count, bare=bare, processes=processes
            )
            return before, after
    finally:
        stop(web, *workers)
        server.stop()


def _items(fake: FakeClose, total: int, *, bare: bool) -> list[Any]:
    """Events for dealkeeper; bodies for the bare app (its jobs are queued by `_run`)."""
    if bare:
        return [webhook_body(f"mem{n}") for n in range(total)]
    return list(won_events(fake, total))


def _queue_noops(connection: redis.Redis, count: int) -> None:
    queue = make_queue(connection)
    with connection.pipeline() as pipe:
        for _ in range(count):
            queue.enqueue_call("bench.bareapp.noop", result_ttl=3600, pipeline=pipe)
        pipe.execute()


def _run(
    url: str, items: list[Any], connection: redis.Redis, done: int, *, bare: bool, processes: Any
) -> dict[str, float]:
    if bare:
        _queue_noops(connection, len(items))
    send_all(url + "/webhooks/close", items)
    wait_until(lambda: finished(connection, done), what="the events", timeout=900)
    return rss(*processes)


def run(events: int) -> Result:
    count = events
    results = {}
    for bare in (True, False):
        with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
            results[bare] = measure(Path(name), bare=bare, count=count)
    figures: dict[str, Any] = {}
    growth: dict[bool, float] = {}
    for bare, (before, after) in results.items():
        side = "bare" if bare else "dealkeeper"
        changes = {k: (after[k] - before[k]) / before[k] for k in before}
        growth[bare] = max(changes.values())
        for key in before:
            figures[f"{side} {key} MiB"] = (
                f"{before[key]:.1f} -> {after[key]:.1f} ({changes[key]:+.1%})"
            )
    return Result(
        name="memory",
        figures=figures,
        ratio=f"largest growth over {count} events: dealkeeper {growth[False]:+.1%}, "
        f"bare {growth[True]:+.1%} (goal < {GOAL_GROWTH:.0%})",
        goals={"growth < 10%": growth[False] < GOAL_GROWTH},
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
