"""The sweeps page: every sweep rule with its schedule, its next run and its last runs (listed,
matched, queued, and how the queued jobs ended), and "Dry run now" (admin): what a run
would write, judged here on the first deals Close lists, queueing and writing nothing.

The page reads only Redis (two pipelines, whatever the number of sweeps). A dry run calls
Close (it lists deals), so it is an admin's POST; its result is kept in Redis for a few
minutes under a random id and the POST redirects to the page showing it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from service.adapters.metadata import fetch_metadata
from service.adapters.sweepstore import SweepStore
from service.authoring.naming import field_names
from service.config.errors import DealkeeperError, InvalidRulesError
from service.console.closecalls import NO_KEY, close_client
from service.console.context import Console, console, require_admin
from service.console.pages.rules import find_text
from service.core.rules import Rule, RuleSet
from service.core.rules.cron import next_occurrence
from service.core.status import duration
from service.processing.sweeps.dryrun import bounded_dry_run
from service.processing.sweeps.report import describe_update

RUNS_SHOWN = 5
# A dry run from the page judges at most this many deals, for about this long: the page
# answers within seconds whatever the size of the organization.
DRY_RUN_MAX_DEALS = 200
DRY_RUN_BUDGET_SEC = 15.0
DRY_RUN_KEY_PREFIX = "dk:console:dryrun:"
DRY_RUN_KEEP_SEC = 15 * 60
WRITTEN = "applied"


@dataclass(frozen=True)
class SweepRow:
    """One sweep rule as the page shows it."""

    rule: Rule
    next_run: datetime | None
    runs: list[tuple[dict[str, Any], dict[str, int]]]


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/sweeps", "sweeps", _page)
    bp.add_url_rule("/sweeps/dry-run", "sweeps_dry_run", _dry_run, methods=["POST"])


def _page() -> str:
    the = console()
    holder = the.rules
    try:
        ruleset: RuleSet | None = holder.current()
    except InvalidRulesError:
        ruleset = None
    now = datetime.fromtimestamp(the.clock(), UTC)
    sweeps = ruleset.sweep_rules if ruleset else ()
    recent = SweepStore(the.connection).recent_runs([r.name for r in sweeps], count=RUNS_SHOWN)
    rows = [
        SweepRow(rule=rule, next_run=next_run(rule, now=now), runs=recent.get(rule.name, []))
        for rule in sweeps
    ]
    return render_template(
        "console/sweeps.html",
        title="Sweeps",
        path=the.settings.rules_path,
        ruleset=ruleset,
        problems=holder.problems,
        rows=rows,
        now=now,
        until=lambda at: duration(max((at - now).total_seconds(), 0)),
        find_text=find_text,
        written=WRITTEN,
        other_outcomes=other_outcomes,
        result=_kept_result(the, request.args.get("dry_run", "")),
        problems_flashed=get_flashed_messages(category_filter=["sweeps"]),
        has_key=bool(the.settings.close_api_key),
        no_key=NO_KEY,
        max_deals=DRY_RUN_MAX_DEALS,
        budget_sec=DRY_RUN_BUDGET_SEC,
    )


def next_run(rule: Rule, *, now: datetime) -> datetime | None:
    """When the workers run the sweep next (None: disabled, or a schedule naming no time)."""
    if rule.sweep is None or not rule.enabled:
        return None
    return next_occurrence(rule.sweep.schedule, after=now, tz=rule.timezone)


def other_outcomes(outcomes: dict[str, int]) -> str:
    """How the queued jobs that did not write ended: `no_update 2, stale 1`."""
    return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != WRITTEN)


def _dry_run() -> BaseResponse:
    require_admin()  # it costs Close calls
    the = console()
    name = request.form.get("sweep", "")
    try:
        ruleset = the.rules.current()
    except InvalidRulesError:
        return _back(problem="No good rules were ever loaded: nothing to run.")
    rule = ruleset.rule(name)
    if rule is None or rule.sweep is None:
        return _back(problem=f"No sweep rule named {name!r} is in force.")
    client = close_client(the)
    if client is None:
        return _back(problem=f"{NO_KEY}: a dry run lists the sweep's deals from Close.")
    moment = datetime.fromtimestamp(the.clock(), UTC).replace(microsecond=0)
    try:
        with client:
            metadata = fetch_metadata(client)
            found = bounded_dry_run(
                rule,
                ruleset=ruleset,
                moment=moment,
                client=client,
                metadata=metadata,
                max_deals=DRY_RUN_MAX_DEALS,
                budget_sec=DRY_RUN_BUDGET_SEC,
            )
    except DealkeeperError as error:  # Close refused, failed, or is rate limited for long
        return _back(problem=f"The dry run of {name} failed: Close answered {error}")
    names = field_names(metadata)
    tally = found.progress.tally
    result = {
        "sweep": rule.name,
        "at": moment.isoformat(),
        "filters": found.sweeper.filters,
        "total": found.progress.total,
        "listed": tally.listed,
        "matched": tally.matched,
        "would_update": tally.to_update,
        "already_correct": tally.already_correct,
        "unresolved": tally.unresolved,
        "stopped": found.stopped,
        "enabled": rule.enabled,
        "rule_dry_run": rule.dry_run,
        "elapsed_sec": round(found.elapsed_sec, 1),
        "updates": [
            {
                "opportunity_id": u.opportunity_id,
                "text": describe_update(u, names=names),
                "update": asdict(u)["update"],
            }
            for u in found.updates
        ],
    }
    token = secrets.token_urlsafe(12)
    the.connection.set(
        DRY_RUN_KEY_PREFIX + token, json.dumps(result, default=str), ex=DRY_RUN_KEEP_SEC
    )
    return redirect(url_for("console.sweeps", dry_run=token, _anchor="dry-run-result"), 303)


def _back(*, problem: str) -> BaseResponse:
    flash(problem, "sweeps")  # in the signed session: no link can make the page say it
    return redirect(url_for("console.sweeps"), 303)


def _kept_result(the: Console, token: str) -> dict[str, Any] | None:
    if not token or not token.replace("-", "").replace("_", "").isalnum():
        return None
    raw = the.connection.get(DRY_RUN_KEY_PREFIX + token)
    if raw is None:
        return {"expired": True}
    found = json.loads(raw)
    return found if isinstance(found, dict) else None
