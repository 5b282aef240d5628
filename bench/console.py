"""The console's pages with 10,000 deals' history in Redis: each page's p50 and p95 over
sequential requests, against a bare Flask page (a 50-row Jinja2 table) on the same gunicorn.

    python3 dev.py bench console [--deals 10000] [--requests 40]

Redis holds what a busy deployment's does: every deal's last events in its history (3 each),
a week of hourly activity, a full parked store (1,000 events), the last runs of two sweeps,
and a cached hygiene report over every deal (three checks, 40 reps, 3 pipelines). The rules
are the shipped ones plus two sweeps and a report check, so every page has something to show.
gunicorn runs the Procfile's web process with the console on; the client signs in once and
asks each page in turn. No page may call Close on a GET, so no fake Close is needed. Goal:
every page's p95 < 100 ms.
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
from fakeclose.eventlog import make_event
from service.adapters.activity import ACTIVITY_PREFIX, HOUR_SEC, hour_of
from service.adapters.history import History, HistoryEntry
from service.adapters.parked import REFUSAL_META, store_compactly
from service.adapters.queue import enqueue_event, make_queue
from service.adapters.reportcache import store_report
from service.adapters.sweepstore import SweepStore
from service.core.events import event_from_dict
from service.core.hygiene import CheckCount, JudgedDeal
from service.core.hygieneout import as_document

ROOT = Path(__file__).resolve().parent.parent
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
SWEEPS = ("stale-deals", "won-deals-get-date-won")
CHECKS = (*SWEEPS, "big-deals-going-quiet")
PARKED = 1_000  # the parked store's cap (defaults.PARKED_MAX)
REPS = 40
PIPELINES = ("Sales", "Renewals", "Partners")
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
    _park(connection, PARKED)
    _sweep_runs(connection)
    _report(connection, deals)
    return last


def _park(connection: redis.Redis, count: int) -> None:
    """`count` parked events, as a worker leaves one Close refused (reason, rules, errors)."""
    queue = make_queue(connection)
    now = datetime.now(UTC)
    actor = {"user_id": "user_bench", "api_key_id": None, "request_id": None,
             "request_method": "PUT", "request_path": "/"}  # fmt: skip
    for number in range(count):
        raw = make_event(
            event_id=f"ev_parked{number:06d}", when=now - timedelta(minutes=number),
            organization_id="orga_bench", actor=actor, action="updated",
            object_id=f"oppo_bench{number:06d}", lead_id=f"lead_bench{number:06d}",
            data={"value": 1500000}, previous_data={"value": 500000}, changed_fields=["value"],
        )  # fmt: skip
        job = queue.fetch_job(enqueue_event(event_from_dict(raw), queue=queue).job_id)
        assert job is not None
        queue.remove(job)
        job.meta[REFUSAL_META] = {
            "rules": ["tag-big-deals"],
            "field_errors": {"custom.Segment": "'Enterprise' is not one of the field's choices"},
        }
        job.save_meta()  # type: ignore[no-untyped-call]
        queue.failed_job_registry.add(job, exc_string="")
        store_compactly(queue, job, "CloseRefusedError: 400 Bad Request for PUT " * 4)


def _sweep_runs(connection: redis.Redis) -> None:
    store = SweepStore(connection)
    for sweep in SWEEPS:
        for day in range(10, 0, -1):
            at = datetime.now(UTC) - timedelta(days=day)
            store.record_run(sweep, summary={
                "at": at.isoformat(), "finished_at": (at + timedelta(seconds=40)).isoformat(),
                "total": 4000, "pages": 40, "listed": 4000, "matched": 120, "queued": 120,
                "already_correct": 3880, "queued_before": 0,
            })  # fmt: skip


def _report(connection: redis.Redis, deals: int) -> None:
    """A report over `deals` deals: every 7th fails a check, spread over reps and pipelines."""
    counts = [
        CheckCount(name=name, kind="sweep rule" if name in SWEEPS else "report check")
        for name in CHECKS
    ]
    for number in range(deals):
        for offset, count in enumerate(counts):
            count.add(JudgedDeal(
                owner=f"Rep {number % REPS:02d}", pipeline=PIPELINES[number % len(PIPELINES)],
                value=100_000 * (number % 50), fails=(number + offset) % 7 == 0,
            ))  # fmt: skip
    now = datetime.now(UTC)
    store_report(connection, as_document(counts, computed_at=now, digest="bench"),
                 computed_at=now.timestamp())  # fmt: skip


def _rules(folder: Path) -> Path:
    """The shipped rules and two example sweeps (one with a report check), in one folder."""
    rules = folder / "rules"
    rules.mkdir()
    for source in (
        ROOT / "rules" / "deal-hygiene.yaml",
        ROOT / "rules" / "examples" / "sweep-stale-deals.yaml",
        ROOT / "rules" / "examples" / "sweep-won-deals-get-date-won.yaml",
    ):
        (rules / source.name).write_text(source.read_text())
    return rules


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
            env = service_env(
                server.url,
                DEALKEEPER_CONSOLE_PASSWORD=READ_PASSWORD,
                DEALKEEPER_RULES=str(_rules(folder)),
            )
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
