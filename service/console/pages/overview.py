"""The overview: the queue, workers, the last webhook and Close call, Close's rate limit,
events by outcome over 24 hours, webhook refusals, and the rules in force."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, render_template

from service.adapters.activity import HOUR_SEC, Activity
from service.adapters.snapshot import collect_status
from service.console.charts import Series, stacked_bars
from service.console.context import console
from service.core.status import duration

CHART_HOURS = 24
# The outcomes drawn one by one; any other is summed as "other".
CHARTED_OUTCOMES = ("applied", "dry_run", "not_taken", "no_update", "stale", "own_change")


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/", "overview", _page)


def _page() -> str:
    the = console()
    now = the.clock()
    status = collect_status(the.connection, rules_path=the.settings.rules_path, clock=the.clock)
    hours = Activity(the.connection, clock=the.clock).hours(CHART_HOURS)
    rejected = {k: v for k, v in status.webhooks.items() if k.startswith("rejected")}
    return render_template(
        "console/overview.html",
        title="Overview",
        status=status,
        now=now,
        ago=lambda at: "never" if at is None else duration(max(now - at, 0)) + " ago",
        chart=_outcome_chart(hours),
        rejected=rejected,
    )


def _outcome_chart(hours: list[tuple[int, dict[str, int]]]) -> object:
    labels = [datetime.fromtimestamp(h * HOUR_SEC, UTC).strftime("%H:00") for h, _ in hours]
    series = [
        Series(name, [counts.get(f"outcome:{name}", 0) for _, counts in hours])
        for name in CHARTED_OUTCOMES
    ]
    other = [
        sum(v for k, v in counts.items() if k.startswith("outcome:"))
        - sum(counts.get(f"outcome:{name}", 0) for name in CHARTED_OUTCOMES)
        for _, counts in hours
    ]
    series.append(Series("other", other))
    return stacked_bars(labels, series, title="Events by outcome, last 24 hours (UTC)")
