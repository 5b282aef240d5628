"""A sweep's dry run: list its deals and judge each as a run would, queueing and writing
nothing. `dealkeeper sweep NAME --dry-run` lists every page; the console's "Dry run now"
stops after a number of deals or seconds, so a page cannot hang on a large organization.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.adapters.close import JSONAPI
from service.config.errors import CloseRateLimitedError
from service.core.events import swept_event
from service.core.rules import Metadata, Plan, Rule, RuleSet
from service.processing.sweeps.paging import PAGE_LIMIT, PagingStalledError
from service.processing.sweeps.progress import PlannedUpdate, Progress
from service.processing.sweeps.run import Sweeper, run_sweep, would_change


@dataclass
class DryRun:
    """What a dry run found: the run's progress, every update it would queue, and why it
    stopped before the end of the listing (None: it listed every deal)."""

    sweeper: Sweeper
    progress: Progress = field(default_factory=Progress)
    updates: list[PlannedUpdate] = field(default_factory=list)
    stopped: str | None = None
    elapsed_sec: float = 0.0


def dry_run_sweeper(
    rule: Rule,
    *,
    ruleset: RuleSet,
    moment: datetime,
    client: JSONAPI,
    metadata: Metadata | None,
    updates: list[PlannedUpdate] | None = None,
    page_limit: int = PAGE_LIMIT,
) -> Sweeper:
    """A run of `rule` at `moment` that queues nothing; every update it would queue is
    appended to `updates` when given (the run's tally keeps only the first few)."""

    def observe(item: Mapping[str, Any], plan: Plan) -> None:
        if updates is not None and would_change(plan, rule):
            event = swept_event(item, sweep=rule.name, moment=moment)
            updates.append(PlannedUpdate.of(event, dict(plan.update or plan.dry_run_update)))

    return Sweeper(
        rule,
        ruleset=ruleset,
        moment=moment,
        client=client,
        metadata=metadata,
        enqueue=None,
        page_limit=page_limit,
        observe=observe,
    )


def bounded_dry_run(
    rule: Rule,
    *,
    ruleset: RuleSet,
    moment: datetime,
    client: JSONAPI,
    metadata: Metadata | None,
    max_deals: int,
    budget_sec: float,
    page_limit: int = PAGE_LIMIT,
    clock: Callable[[], float] = time.monotonic,
) -> DryRun:
    """Judge the first `max_deals` deals the sweep lists, for at most about `budget_sec`
    (looked at between pages: a page already asked for is finished). A rate limit longer
    than the client waits, or a listing that stalls, ends the run early with its reason."""
    updates: list[PlannedUpdate] = []
    sweeper = dry_run_sweeper(
        rule, ruleset=ruleset, moment=moment, client=client, metadata=metadata, updates=updates,
        page_limit=max(1, min(page_limit, max_deals)),
    )  # fmt: skip
    found = DryRun(sweeper=sweeper, updates=updates)
    started = clock()
    reached = [Progress()]

    def keep_going(progress: Progress) -> bool:
        if progress.tally.listed >= max_deals:
            found.stopped = f"stopped after the first {progress.tally.listed} deals listed"
            return False
        if clock() - started >= budget_sec:
            found.stopped = f"stopped after {budget_sec:g} s"
            return False
        return True

    try:
        run_sweep(found.sweeper, Progress(), keep_going=keep_going, on_page=reached.append)
    except CloseRateLimitedError as error:
        found.stopped = (
            f"stopped by Close's rate limit (Close asks to wait {error.retry_after_sec:.0f} s)"
        )
    except PagingStalledError as error:
        found.stopped = str(error)
    found.progress = reached[-1]
    found.elapsed_sec = clock() - started
    return found
