"""The console's pages with 10,000 deals' history in Redis: each page's p50 and p95 over
sequential requests, against a bare Flask page (a 50-row Jinja2 table) on the same gunicorn.

    python3 dev.py bench console [--deals 10000] [--requests 40]

Redis holds what a busy deployment's does: every deal's last events in its history (3 each),
a week of hourly activity, parked events, sweep runs. gunicorn runs the Procfile's web
process with the console on; the client signs in once and asks each page in turn. No page
may call Close on a GET, so no fake Close is needed. Goal: every page's p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import requests

from bench.common import (
    Result,
    fmt_ratio,
    percentile,
    service_env,
    start_gunicorn,
    start_redis,
    stop,
)
from service.adapters.activity import ACTIVITY_PREFIX, HOUR_SEC, hour_of
from service.adapters.history import History, HistoryEntry

GOAL_P95_MS = 100.0
READ_PASSWORD = "bench-console-read-pw"
PAGES = (
    "/console/",
    "/console/deal?q={deal}",
    "/console/rules",
    "/console/parked",
    "/console/sweeps",
    "/console/report",
    "/console/playground",
)
RULES = ("stamp-date-won", "tag-big-deals", "full-confidence-when-won", "stale-deals")
OUTCOMES = ("applied", "no_update", "own_change", "stale")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench console", description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40, help="per page")
    return parser.parse_args(argv)


def fill(connection: redis.Redis, deals: int) -> str:
    """Histories of `deals` deals (3 entries each) and a week of activity; a deal's id."""
    history = History(connection)
    now = time.time()
    last = ""
    for start in range(0, deals, 500):
        pipe = connection.pipeline(transaction=False)
        for number in range(start, min(start + 500, deals)):
            last = f"oppo_bench{number:06d}"
            for turn in range(3):
                moment = datetime.now(UTC) - timedelta(hours=turn * 7)
                history.record(_entry(last, turn, moment), target=pipe)
        pipe.execute()
    pipe = connection.pipeline(transaction=False)
    for back in range(7 * 24):
        key = f"{ACTIVITY_PREFIX}{hour_of(now - back * HOUR_SEC)}"
        for i, outcome in enumerate(OUTCOMES):
            pipe.hset(key, f"outcome:{outcome}", 40 + 10 * i)
        for rule in RULES:
            pipe.hset(key, f"rule:{rule}", 25)
    pipe.execute()
    return last


def _entry(opportunity_id: str, turn: int, moment: datetime) -> HistoryEntry:
    return HistoryEntry(
        event_id=f"ev_bench{turn}{opportunity_id[-6:]}",
        opportunity_id=opportunity_id,
        event_type="opportunity.updated",
        event_time=moment.isoformat(),
        processed_at=moment.timestamp() + 0.2,
        outcome="applied" if turn == 0 else "no_update",
        fired=["stamp-date-won"] if turn == 0 else [],
        update={"date_won": moment.date().isoformat()} if turn == 0 else {},
        close_status=200 if turn == 0 else None,
        detail="",
    )


def signed_in(base: str) -> dict[str, str]:
    """The Cookie header of a signed-in session. The cookie is Secure, which requests keeps
    from plain http (rightly): the benchmark carries it by hand, as a proxy's TLS would."""
    login = requests.get(base + "/console/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]*)"', login.text)
    assert token, "no CSRF token on the login page"
    first = login.cookies.get("dk_console") or _cookie(login)
    answer = requests.post(
        base + "/console/login",
        data={"password": READ_PASSWORD, "csrf_token": token.group(1)},
        headers={"Cookie": f"dk_console={first}"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text
    return {"Cookie": f"dk_console={_cookie(answer)}"}


def _cookie(answer: requests.Response) -> str:
    found = re.search(r"dk_console=([^;]+)", answer.headers.get("Set-Cookie", ""))
    assert found, "no session cookie"
    return found.group(1)


def timings(base: str, path: str, headers: dict[str, str], count: int) -> list[float]:
    session = requests.Session()
    spent = []
    for _ in range(count + 3):  # the first few warm the process's caches
        started = time.perf_counter()
        answer = session.get(base + path, headers=headers, timeout=30, allow_redirects=False)
        spent.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}")
    return spent[3:]


def run(deals: int, requests: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as folder_name:
        folder = Path(folder_name)
        server = start_redis(folder)
        ours = bare = None
        try:
            deal = fill(redis.Redis.from_url(server.url), deals)
            env = service_env(server.url, DEALKEEPER_CONSOLE_PASSWORD=READ_PASSWORD)
            ours, ours_url = start_gunicorn("service.web:create_app()", env, folder / "web.log")
            bare, bare_url = start_gunicorn("bench.bareapp:create_app()", env, folder / "bare.log")
            headers = signed_in(ours_url)
            baseline = timings(bare_url, "/page", {}, requests)
            pages = {p.split("?")[0]: timings(ours_url, p.format(deal=deal), headers, requests)
                     for p in PAGES}  # fmt: skip
        finally:
            stop(ours, bare)
            server.stop()
    return _result(deals, baseline, pages)


def _result(deals: int, baseline: list[float], pages: dict[str, list[float]]) -> Result:
    base_p50 = percentile(baseline, 50)
    figures: dict[str, Any] = {
        "deals with history": deals,
        "bare Flask page p50/p95 ms": f"{base_p50:.1f} / {percentile(baseline, 95):.1f}",
    }
    worst = 0.0
    for path, spent in pages.items():
        p50, p95 = percentile(spent, 50), percentile(spent, 95)
        worst = max(worst, p95)
        figures[f"{path} p50/p95 ms"] = f"{p50:.1f} / {p95:.1f} ({fmt_ratio(p50 / base_p50)} bare)"
    return Result(
        name="console",
        figures=figures,
        ratio=f"slowest page p95 {worst:.1f} ms; bare page p50 {base_p50:.1f} ms",
        goals={f"every page p95 < {GOAL_P95_MS:.0f} ms": worst < GOAL_P95_MS},
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
