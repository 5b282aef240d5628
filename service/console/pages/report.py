"""The hygiene report: `dealkeeper report` in the browser, from the copy kept in Redis.

Opening the page never reads Close. It shows the report a worker last computed
(adapters/reportcache.py) and when; when that is older than 15 minutes, or there is none,
it queues one refresh job (processing/hygiene.py's refresh_report, computed through the
workers' shared rate limit) and says so. "Refresh now" asks the same; it is one bounded
job, so the read role may ask too. /report.csv is the kept report as `dealkeeper report
--csv` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from rq import Worker
from werkzeug.wrappers import Response as BaseResponse

from service.adapters import reportcache
from service.config.errors import QueueUnavailableError
from service.console.charts import horizontal_bars
from service.console.context import console
from service.core.hygieneout import csv_of_document
from service.core.status import duration

# What the page says after a "Refresh now" (the ?refresh= of its redirect).
REFRESH_NOTES = {
    "queued": "A refresh was queued: a worker computes the report, then this page shows it.",
    "running": "A refresh is queued or running already: this page shows it when it ends.",
    "nokey": "CLOSE_API_KEY is not set: the report reads Close's opportunities.",
    "unavailable": "Redis did not take the refresh job; try again.",
}


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/report", "report", _page)
    bp.add_url_rule("/report.csv", "report_csv", _csv)
    bp.add_url_rule("/report/refresh", "report_refresh", _refresh, methods=["POST"])


def _page() -> str:
    the = console()
    now = the.clock()
    cached = reportcache.read_cached(the.connection)
    has_key = bool(the.settings.close_api_key)
    queued_now = False
    if has_key and cached.refreshing_since is None and cached.is_stale(now=now):
        try:
            queued_now = reportcache.request_refresh(the.connection, now=now)
        except QueueUnavailableError:
            queued_now = False  # shown as not refreshing; the next load asks again
    refreshing = queued_now or cached.refreshing_since is not None
    report = cached.report or {}
    checks = [_check_view(check) for check in report.get("checks") or ()]
    return render_template(
        "console/report.html",
        title="Hygiene report",
        cached=cached,
        has_key=has_key,
        refreshing=refreshing,
        workers=Worker.count(connection=the.connection) if refreshing else None,
        age=None if cached.computed_at is None else duration(max(now - cached.computed_at, 0)),
        stale=cached.computed_at is not None
        and now - cached.computed_at >= reportcache.STALE_AFTER_SEC,
        note=REFRESH_NOTES.get(request.args.get("refresh", "")),
        checks=checks,
        reps=_reps(checks),
        money=money,
    )


def _check_view(check: Mapping[str, Any]) -> dict[str, Any]:
    by_owner = check.get("by_owner") or []
    title = f"{check.get('name')}: failing deals per owner"
    return {
        **check,
        "chart": horizontal_bars(
            [(str(row["owner"]), int(row["deals"])) for row in by_owner], title=title
        )
        if by_owner
        else None,
    }


def _reps(checks: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Per owner, the checks their deals fail: what to talk to each rep about, the rep with
    most value at stake first."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        for row in check.get("by_owner") or ():
            rows.setdefault(str(row["owner"]), []).append(
                {"check": check.get("name"), "kind": check.get("kind"), **row}
            )
    at_stake = {owner: sum(int(r["value"]) for r in found) for owner, found in rows.items()}
    order = sorted(rows, key=lambda owner: (-at_stake[owner], owner))
    return [(owner, rows[owner]) for owner in order]


def money(cents: Any) -> str:
    """Cents as Close holds them, shown as units with two decimals (as the CLI's table)."""
    value = int(cents or 0)
    return f"{value // 100:,}.{value % 100:02d}"


def _csv() -> Response | tuple[str, int, dict[str, str]]:
    cached = reportcache.read_cached(console().connection)
    if cached.report is None:
        text = "The report has not been computed yet: open /console/report to have it made.\n"
        return text, 404, {"Content-Type": "text/plain; charset=utf-8"}
    stamp = str(cached.report.get("computed_at", "")).replace(":", "")[:15]
    return Response(
        csv_of_document(cached.report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="dealkeeper-report-{stamp}.csv"'},
    )


def _refresh() -> BaseResponse:
    the = console()
    if not the.settings.close_api_key:
        outcome = "nokey"
    else:
        try:
            queued = reportcache.request_refresh(the.connection, now=the.clock())
            outcome = "queued" if queued else "running"
        except QueueUnavailableError:
            outcome = "unavailable"
    return redirect(url_for("console.report", refresh=outcome), code=303)
