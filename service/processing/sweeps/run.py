"""One sweep run: list the rule's opportunities page by page, judge each as the job will,
and queue a job for each one the rule would change.

The sweep only decides what to queue. The write itself goes the way of every webhook
event (service/processing/jobs.py): rate-limited, retried, parked, in order per opportunity, checked
against the deal as it is just before the PUT. Each listed deal becomes an event `swept`
at the run's scheduled moment, so relative dates are the same whenever the run gets to it,
and a resumed run makes the very same events, which the queue's dedupe takes once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime
from typing import Any

from service.adapters.close import JSONAPI
from service.core.events import Event, swept_event
from service.core.rules import Metadata, Plan, Rule, RuleSet, make_plan
from service.core.rules.language.find import find_params
from service.core.rules.model import FindFilter
from service.processing.sweeps.activity import status_changed_at
from service.processing.sweeps.fields import (
    fields_param,
    reads_status_change,
    reads_status_change_in_if,
)
from service.processing.sweeps.paging import PAGE_LIMIT, PagingStalledError, advance, page_params
from service.processing.sweeps.progress import PlannedUpdate, Progress, Tally

OPPORTUNITIES_PATH = "opportunity/"
SAMPLE_SIZE = 5

Enqueue = Callable[[Event], bool]  # queue the event's job; False: it was queued before
Observe = Callable[[Mapping[str, Any], Plan], None]  # each listed deal and its plan


@dataclass
class Sweeper:
    """A run of one sweep rule at one moment; `enqueue` None evaluates only (dry run)."""

    rule: Rule
    _: KW_ONLY
    ruleset: RuleSet
    moment: datetime
    client: JSONAPI
    metadata: Metadata | None
    enqueue: Enqueue | None = None
    page_limit: int = PAGE_LIMIT
    # The report's use: a report check's find (its rule has no sweep), the fields it
    # groups by, and a look at every judged deal.
    find: tuple[FindFilter, ...] | None = None
    extra_fields: tuple[str, ...] = ()
    observe: Observe | None = None
    filters: dict[str, str] = field(init=False)
    fields: str | None = field(init=False)

    def __post_init__(self) -> None:
        find = self.find if self.find is not None else _find_of(self.rule)
        self.filters = find_params(find, moment=self.moment, tz=self.rule.timezone)
        self.fields = fields_param(self.rule)
        if self.fields is not None and self.extra_fields:
            self.fields = ",".join(dict.fromkeys((*self.fields.split(","), *self.extra_fields)))

    def step(self, progress: Progress) -> Progress:
        """List the next page and queue what it calls for; the progress after it."""
        limit = progress.page_size or self.page_limit
        params = page_params(self.filters, cursor=progress.cursor, limit=limit, fields=self.fields)
        page = self.client.request_json("GET", OPPORTUNITIES_PATH, params=params)
        items, more = _objects(page.get("data")), bool(page.get("has_more"))
        fresh, cursor = advance(progress.cursor, items=items)
        if more and not fresh:
            raise PagingStalledError(_stalled(progress, served=len(items)))
        tally = replace(progress.tally, planned=list(progress.tally.planned))
        for item in fresh:
            self._take(item, tally)
        # Close's maximum _limit varies by resource: a short page is not the last one.
        served = len(items) if more and len(items) < limit else progress.page_size
        return Progress(
            cursor=cursor,
            total=progress.total if progress.total is not None else _total(page, len(items)),
            tally=tally,
            pages=progress.pages + 1,
            done=not more,
            page_size=served,
        )

    def _take(self, item: Mapping[str, Any], tally: Tally) -> None:
        tally.listed += 1
        event, plan = self.judge(item)
        if self.observe is not None:
            self.observe(item, plan)
        tally.unresolved.extend(n for n in plan.unresolved if n not in tally.unresolved)
        if self.rule.name not in plan.fired:
            return
        tally.matched += 1
        if not would_change(plan, self.rule):
            tally.already_correct += 1
            return
        update = plan.update or plan.dry_run_update
        tally.to_update += 1
        if len(tally.planned) < SAMPLE_SIZE:
            tally.planned.append(PlannedUpdate.of(event, dict(update)))
        if self.enqueue is not None and not self.enqueue(event):
            tally.queued_before += 1

    def judge(self, item: Mapping[str, Any]) -> tuple[Event, Plan]:
        """The deal's event and the plan the rules make of it, as the job will make it."""
        event = swept_event(item, sweep=self.rule.name, moment=self.moment)
        plan = self._plan(event)
        wanted = reads_status_change_in_if(self.rule) or self.rule.name in plan.fired
        if reads_status_change(self.rule) and wanted:
            moved = status_changed_at(self.client, opportunity=item)
            event = replace(event, data={**item, "date_status_changed": moved})
            plan = self._plan(event)
        return event, plan

    def _plan(self, event: Event) -> Plan:
        return make_plan(self.ruleset, event, metadata=self.metadata)


def run_sweep(
    sweeper: Sweeper,
    progress: Progress,
    *,
    keep_going: Callable[[Progress], bool] = lambda _: True,
    on_page: Callable[[Progress], None] = lambda _: None,
) -> Progress:
    """Pages until the run is done or `keep_going` says stop; `on_page` after each page."""
    while not progress.done and keep_going(progress):
        progress = sweeper.step(progress)
        on_page(progress)
    return progress


def would_change(plan: Plan, rule: Rule) -> bool:
    """True when the rule fired and its update (sent, or logged in dry run) changes the deal:
    what a sweep queues a job for."""
    return rule.name in plan.fired and bool(plan.update or plan.dry_run_update)


def _find_of(rule: Rule) -> tuple[FindFilter, ...]:
    if rule.sweep is None:
        raise ValueError(f"rule {rule.name!r} is not a sweep rule")
    return rule.sweep.filters


def _objects(data: Any) -> list[Mapping[str, Any]]:
    return [item for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []


def _stalled(progress: Progress, *, served: int) -> str:
    return (
        f"Close answered has_more=true to GET {OPPORTUNITIES_PATH} with a page listing no deal"
        f" not listed before ({served} listed again, after {progress.tally.listed} deals in"
        f" {progress.pages} pages); the sweep stops here rather than ask for the same page"
        " forever. Run it again later; if this persists, ask Close's support why its"
        " opportunity list says more follow"
    )


def _total(page: Mapping[str, Any], listed: int) -> int:
    total = page.get("total_results")
    return total if isinstance(total, int) and not isinstance(total, bool) else listed
