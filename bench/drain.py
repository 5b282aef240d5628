"""Drain under a rate limit: 300 events, each needing one update, the fake Close limiting
writes to 20 per second, three workers; and the same 300 updates through Close's official
Python client (`closeio`, sequential) as the peer. Then the same drain with every request
to the fake held for a Close-like round trip (100 ms), by one `dealkeeper worker
--processes 8`: a worker process waits out both of its round trips per event, so one
process alone manages some five events a second there, and processes are what keep up.
Last, the first drain again under a window of `--window-sec` seconds (default 5) allowing
limit x window writes (100 in 5 s, the example of Close's Rate Limits page): Close states
a count per window of a length it does not state, so the pace must come from `remaining`
and `reset`, not from reading `limit` as a count per second. Time and 429s alone cannot
show that: a pacer reading `limit=100` as 100 a second sends a window's 100 writes in its
first second, then waits out the rest on `remaining=0`, and meets both goals. So the run
also counts the most writes sent within any one second, which spreading the window's
writes over it keeps near limit / window.

    python3 dev.py bench drain [--events 300] [--limit 20] [--latency-ms 100] [--processes 8]
                               [--window-sec 5]

dealkeeper runs with its default settings (CLOSE_RATE_LIMIT unset). The ideal is the time
Close's limit allows: events / (limit per window / window) seconds. Goals, for the first
drain and the long-window one: wall time <= 1.1x the ideal, 429s <= 2% of all requests to
Close; for the long-window one also at most 1.5x limit / window writes within any
second. The fake counts fixed windows per API key (one second unless said otherwise),
opened by the first request, and says so in every answer's `ratelimit: limit=,
remaining=, reset=` header, as Close does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis
from rq import Worker

from bench.common import (
    API_KEY,
    Result,
    fmt_ratio,
    one_field_env,
    start_redis,
    start_worker,
    stop,
    wait_until,
)
from bench.events import enqueue_all, won_events
from fakeclose import FakeClose

GOAL_TIME_RATIO = 1.1
GOAL_429_SHARE = 0.02
WORKERS = 3
PEER_TIMEOUT_SEC = 120.0
HOLD_EVERY_REQUEST = 10**9
# The most writes within any one second, as a multiple of the window's average rate: above
# it, the window's writes were sent in a burst rather than spread over the window.
GOAL_BURST_RATIO = 1.5


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench drain", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--limit", type=int, default=20, help="writes per second")
    parser.add_argument("--latency-ms", type=int, default=100, help="round trip, second run")
    parser.add_argument("--processes", type=int, default=8, help="of one worker, second run")
    parser.add_argument("--window-sec", type=int, default=5, help="window of the last run")
    return parser.parse_args(argv)


def share_429(fake: FakeClose) -> tuple[int, int]:
    """(429 answers, all answers) the fake gave."""
    answers = fake.answers
    return sum(n for (_, status), n in answers.items() if status == 429), sum(answers.values())


def applied(fake: FakeClose) -> int:
    return fake.answers.get(("PUT", 200), 0)


def most_within_a_second(times: list[float]) -> int:
    """The most of `times` (seconds) that fall within any one second."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def drain_with_dealkeeper(
    folder: Path,
    count: int,
    limit: int,
    *,
    latency_sec: float = 0.0,
    processes: int | None = None,
    window_sec: float = 1.0,
) -> tuple[float, int, int, int]:
    """Seconds from queueing to the last applied PUT, 429s, all requests, the most PUTs
    Close received within any one second: WORKERS worker commands, or (given `processes`)
    one `dealkeeper worker --processes N`; `limit` writes per `window_sec`."""
    server = start_redis(folder)
    workers = []
    try:
        with FakeClose() as fake:
            fake.set_rate_limit(limit, window_sec=window_sec, group="write")
            env = one_field_env(server.url, folder, CLOSE_API_URL=fake.url)
            connection = redis.Redis.from_url(server.url)
            if processes is not None:
                workers = [start_worker(env, folder / "pool.log", processes=processes)]
            else:
                workers = [start_worker(env, folder / f"drain{n}.log") for n in range(WORKERS)]
            expected = len(workers) if processes is None else processes
            wait_until(
                lambda: Worker.count(connection=connection) >= expected, what="workers", timeout=60
            )
            events = won_events(fake, count)
            fake.clear_requests()
            if latency_sec:
                fake.delay_next(HOLD_EVERY_REQUEST, latency_sec)
            started = time.monotonic()
            enqueue_all(connection, events)
            ideal = count / (limit / window_sec)
            wait_until(lambda: applied(fake) >= count, what="the drain", timeout=ideal * 4 + 30)
            seconds = time.monotonic() - started
            limited, total = share_429(fake)
            puts = [r.received_at for r in fake.requests_matching("PUT", "opportunity/")]
    finally:
        stop(*workers)
        server.stop()
    return seconds, limited, total, most_within_a_second(puts)


def drain_with_closeio(count: int, limit: int) -> tuple[float, int, int, int]:
    """The peer: closeio's API client, one PUT after another. (seconds, 429s, requests,
    updates that failed)."""
    from closeio_api import API, APIError  # type: ignore[import-untyped]  # no type hints

    with FakeClose() as fake:
        fake.set_rate_limit(limit, group="write")
        ids = [fake.add_opportunity(confidence=60)["id"] for _ in range(count)]
        api = API(fake.url, api_key=API_KEY)
        failed = 0
        started = time.monotonic()
        for oppo_id in ids:
            if time.monotonic() - started > PEER_TIMEOUT_SEC:
                failed += 1
                continue
            try:
                api.put(f"opportunity/{oppo_id}", data={"confidence": 100})
            except APIError:
                failed += 1
        seconds = time.monotonic() - started
        limited, total = share_429(fake)
    return seconds, limited, total, failed


def run(events: int, limit: int, latency_ms: int, processes: int, window_sec: int) -> Result:
    count = events
    ideal = count / limit
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        seconds, limited, total, _ = drain_with_dealkeeper(Path(name), count, limit)
    peer_seconds, peer_limited, peer_total, peer_failed = drain_with_closeio(count, limit)
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        slow_seconds, slow_limited, _, _ = drain_with_dealkeeper(
            Path(name), count, limit, latency_sec=latency_ms / 1000, processes=processes
        )
    with tempfile.TemporaryDirectory(prefix="dealkeeper-bench-") as name:
        long_seconds, long_limited, long_total, long_burst = drain_with_dealkeeper(
            Path(name), count, limit * window_sec, window_sec=window_sec
        )
    share = limited / total if total else 0.0
    long_share = long_limited / long_total if long_total else 0.0
    per_window = f"{limit * window_sec} per {window_sec} s"
    return Result(
        name="drain",
        figures={
            "events, write limit, workers": f"{count}, {limit}/s, {WORKERS}",
            "ideal seconds": round(ideal, 1),
            "dealkeeper seconds": round(seconds, 1),
            "dealkeeper 429s / requests": f"{limited} / {total} ({share:.1%})",
            "closeio seconds": round(peer_seconds, 1),
            "closeio 429s / requests": f"{peer_limited} / {peer_total}",
            "closeio updates failed": peer_failed,
            "time ratio": round(seconds / ideal, 2),
            f"at {latency_ms} ms a request, {processes} processes: seconds": round(slow_seconds, 1),
            f"at {latency_ms} ms a request: 429s": slow_limited,
            f"at {latency_ms} ms a request: time ratio": round(slow_seconds / ideal, 2),
            f"{per_window}: seconds": round(long_seconds, 1),
            f"{per_window}: 429s / requests": f"{long_limited} / {long_total} ({long_share:.1%})",
            f"{per_window}: time ratio": round(long_seconds / ideal, 2),
            f"{per_window}: most writes within a second": long_burst,
        },
        ratio=f"dealkeeper/ideal = {seconds:.1f}/{ideal:.1f} s = {fmt_ratio(seconds / ideal)} "
        f"(goal <= {GOAL_TIME_RATIO}); 429s {share:.1%} (goal <= {GOAL_429_SHARE:.0%}); "
        f"closeio {peer_seconds:.1f} s, {peer_failed} failed; at {latency_ms} ms a request, "
        f"{processes} processes: {fmt_ratio(slow_seconds / ideal)}; {per_window}: "
        f"{fmt_ratio(long_seconds / ideal)}, 429s {long_share:.1%}, at most {long_burst} "
        "writes within a second",
        goals={
            "time <= 1.1x ideal": seconds <= ideal * GOAL_TIME_RATIO,
            "429s <= 2%": share <= GOAL_429_SHARE,
            f"{window_sec} s window: time <= 1.1x ideal": long_seconds <= ideal * GOAL_TIME_RATIO,
            f"{window_sec} s window: 429s <= 2%": long_share <= GOAL_429_SHARE,
            f"{window_sec} s window: <= {GOAL_BURST_RATIO}x {limit}/s within a second": long_burst
            <= limit * GOAL_BURST_RATIO,
        },
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
