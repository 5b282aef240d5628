"""A deal: what dealkeeper did with one opportunity's events over 30 days, newest first.

Searched by an opportunity id or by a pasted Close address (closelinks.py reads the ids);
`/console/deal?q={{ opportunity.id }}` is what an integration link in Close opens
(docs/console.md). Read from the history (adapters/history.py) and the opportunity's list of
pending events (adapters/ordering.py): three round trips to Redis, no call to Close.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Blueprint, render_template, request

from service.adapters.history import HISTORY_PER_OPPORTUNITY, HISTORY_TTL_SEC, History, HistoryEntry
from service.adapters.ordering import pending_statuses
from service.console.closelinks import Query, lead_url, opportunity_url, read_query
from service.console.context import console

# What each outcome means, as an ops person asks it: did dealkeeper write, and if not why.
OUTCOMES = {
    "applied": "written to Close",
    "not_taken": "written, but Close did not take every field",
    "dry_run": "dry run: the update was not sent",
    "no_update": "nothing to change",
    "stale": "not sent: the deal had changed since the event",
    "own_change": "the echo of dealkeeper's own write: nothing to do",
    "opportunity_gone": "the opportunity was deleted in Close",
    "other_organization": "an event of another organization: ignored",
}
# RQ's job statuses, as the page says them.
NOW = {
    "queued": "waiting in the queue",
    "started": "being processed",
    "scheduled": "waiting to be retried",
    "deferred": "waiting for an older event",
    "failed": "parked",
}
ENDED = ("finished", "canceled", "stopped")


@dataclass(frozen=True)
class Shown:
    """One history entry as the page shows it."""

    entry: HistoryEntry
    processed: str  # UTC, to the second
    meaning: str
    answer: str  # what Close answered, in words
    update: str  # the update sent (or that would have been), as JSON; "" for none


@dataclass
class DealPage:
    query: Query
    entries: list[Shown] = field(default_factory=list)
    # What its pending events are doing: (job status, the status in words, how many).
    now: list[tuple[str, str, int]] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/deal", "deal", _page)


def _page() -> str:
    query = read_query(request.args.get("q", ""))
    page = DealPage(query)
    if query.opportunity_id is not None:
        _gather(page, query.opportunity_id)
    return render_template("console/deal.html", title="A deal", page=page)


def _gather(page: DealPage, opportunity_id: str) -> None:
    the = console()
    oldest = the.clock() - HISTORY_TTL_SEC
    entries = History(the.connection).for_opportunity(opportunity_id, limit=HISTORY_PER_OPPORTUNITY)
    # A deal's list expires 30 days after its last entry: older entries in it are past 30 days.
    page.entries = [_shown(e) for e in entries if e.processed_at >= oldest]
    counts: dict[str, int] = {}
    for status in pending_statuses(the.connection, opportunity_id).values():
        if status not in ENDED:
            counts[status] = counts.get(status, 0) + 1
    page.now = [(status, NOW.get(status, status), n) for status, n in sorted(counts.items())]
    page.links = {"opportunity": opportunity_url(opportunity_id)}
    if page.query.lead_id is not None:
        page.links["lead"] = lead_url(page.query.lead_id, opportunity_id)


def _shown(entry: HistoryEntry) -> Shown:
    moment = datetime.fromtimestamp(entry.processed_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Shown(
        entry=entry,
        processed=moment,
        meaning=OUTCOMES.get(entry.outcome, entry.outcome),
        answer=_answer(entry),
        update=json.dumps(entry.update, sort_keys=True, indent=1) if entry.update else "",
    )


def _answer(entry: HistoryEntry) -> str:
    if entry.close_status is None:
        return "nothing was sent"
    said: dict[int, str] = {200: "200 OK", 404: "404: no such opportunity"}
    answer = said.get(entry.close_status, str(entry.close_status))
    return f"{answer}; {entry.detail}" if entry.detail else answer
