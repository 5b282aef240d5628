"""Parked events: what Close refused (its text and field errors), the rules that asked for
the write, when and why; and, for the admin, retry one, retry all, purge.

The same store and the same effects as `dealkeeper failed list/retry/purge`: both use
adapters/parked.py. Actions are POSTs (the console's guard checks their CSRF token), need
the admin role, and answer with a 303 back to the page and a message; purge deletes only
after a confirmation step, and only the events the confirmation listed.
"""

from __future__ import annotations

from dataclasses import dataclass

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

from service.adapters.parked import (
    ParkedDetail,
    newest_parked,
    parked_of,
    purge_parked,
    requeue_many,
)
from service.adapters.queue import EventQueue, make_queue
from service.config import defaults
from service.console.closelinks import lead_url, opportunity_url
from service.console.context import console, require_admin

# Parked events a page shows: a full store (defaults.PARKED_MAX) read and drawn at once
# takes half a second and 2 MB of HTML.
PAGE_SIZE = 100


@dataclass(frozen=True)
class Row:
    """One parked event as the page shows it."""

    detail: ParkedDetail
    close_link: str | None
    lead_link: str | None


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/parked", "parked", _page)
    bp.add_url_rule("/parked/retry", "parked_retry", _retry, methods=["POST"])
    bp.add_url_rule("/parked/purge", "parked_purge", _purge, methods=["POST"])


def _queue() -> EventQueue:
    return make_queue(console().connection)


def _page() -> str:
    opportunity = request.args.get("opportunity", "").strip() or None
    start = request.args.get("from", "0")
    return _render(opportunity=opportunity, start=int(start) if start.isdigit() else 0)


def _render(
    *, opportunity: str | None, start: int = 0, confirm_purge: list[str] | None = None
) -> str:
    if opportunity is None:
        shown, total = newest_parked(_queue(), start=start, count=PAGE_SIZE)
    else:
        shown, total = parked_of(_queue(), opportunity)
    return render_template(
        "console/parked.html",
        title="Parked events",
        rows=[_row(d) for d in shown],
        total=total,
        start=start,
        page_size=PAGE_SIZE,
        opportunity=opportunity,
        cap=defaults.PARKED_MAX,
        confirm_purge=confirm_purge,
        messages=get_flashed_messages(),
    )


def _row(detail: ParkedDetail) -> Row:
    opportunity = detail.parked.opportunity
    lead = detail.event.get("lead_id") or (detail.event.get("data") or {}).get("lead_id")
    return Row(
        detail=detail,
        close_link=opportunity_url(opportunity) if opportunity else None,
        lead_link=lead_url(str(lead), opportunity or None) if lead else None,
    )


def _retry() -> BaseResponse:
    require_admin()
    queue = _queue()
    if request.form.get("all") == "yes":
        done = requeue_many(queue)
    else:
        job_id = request.form.get("job_id", "").strip()
        if not job_id:
            flash("Nothing retried: no event was named.")
            return _back()
        done = requeue_many(queue, [job_id])
    said = f"Requeued {len(done.requeued)}."
    if done.missing:
        said += f" {len(done.missing)} were no longer parked: {', '.join(done.missing)}."
    flash(said)
    return _back()


def _purge() -> BaseResponse | str:
    require_admin()
    listed = [j for j in request.form.getlist("job_id") if j]
    if request.form.get("confirm") != "yes":
        # The confirmation step: nothing is deleted; the page lists what would be, and its
        # form names those events, so what arrives parked meanwhile is not purged unseen.
        ids = [str(i) for i in _queue().failed_job_registry.get_job_ids()]
        return _render(opportunity=None, confirm_purge=ids)
    purged = purge_parked(_queue(), listed)
    flash(f"Purged {purged} parked {'event' if purged == 1 else 'events'} for good.")
    return _back()


def _back() -> BaseResponse:
    return redirect(url_for("console.parked"), code=303)
