"""How a job ends: its bookkeeping in one round trip, its one canonical log line, its result.

Everything a finished event leaves in Redis (the loop guard's count, the lag histogram, the
pending list, counters, Close's answers kept during the job, history; what RQ kept of
the job's earlier runs is dropped) goes in one MULTI/EXEC:
one round trip instead of one per concern.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.adapters.history import CLOSE_STATUS_BY_OUTCOME
from service.adapters.ordering import remove_pending
from service.adapters.queue import forget_results
from service.core.events import Event
from service.core.rules import Plan
from service.processing.context import JobContext, Outcome

if TYPE_CHECKING:
    from service.adapters.locks import OpportunityLock

log = logging.getLogger("dealkeeper.jobs")

_LOG_EVENTS = {
    "applied": "plan_applied",
    "dry_run": "plan_applied",
    "no_update": "plan_skipped",
    "stale": "plan_skipped",
    "own_change": "event_ignored",
    "opportunity_gone": "opportunity_gone",
    # Close answered 200 without taking some fields (service/core/writecheck.py): a warning that
    # names them, as the design's contract has it.
    "not_taken": "write_not_taken",
    "other_organization": "event_of_other_organization",
}
# Outcomes of a PUT Close answered 200: the loop guard counts them, the lag is measured.
WRITTEN = frozenset({"applied", "not_taken"})
_WARNINGS = frozenset({"opportunity_gone", "not_taken", "other_organization"})


def finish(
    context: JobContext,
    outcome: str,
    started: float,
    *,
    event: Event,
    plan: Plan | None = None,
    job_id: str | None = None,
    lock: OpportunityLock | None = None,
    also: Callable[[Any], None] | None = None,
    not_taken: list[str] | None = None,
) -> Outcome:
    """Write the job's bookkeeping in one round trip (loop guard, lag, pending list, counts,
    Close's answers, history, `also`'s writes, the opportunity's lock given back), log the
    one canonical line, and return the job's result (`not_taken`: the fields Close answered
    200 without taking)."""
    result = _result(outcome, event, plan)
    if not_taken:
        result["not_taken"] = list(not_taken)
    _write_bookkeeping(
        context, outcome, event=event, plan=plan, job_id=job_id, result=result, lock=lock, also=also
    )
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    extra = {**result, "dry_run": outcome == "dry_run"}
    if "not_taken" in extra:
        extra["fields"] = extra.pop("not_taken")
    if plan is not None and plan.reasons_not_fired:
        extra["not_fired"] = _not_fired(plan)
    level = logging.WARNING if outcome in _WARNINGS else logging.INFO
    log.log(level, _LOG_EVENTS[outcome], extra=extra)
    for hook in context.on_finish:
        hook(event, plan, result)
    return result


def _not_fired(plan: Plan) -> int | dict[str, str]:
    # The reasons are written only when read (evaluation/reasons.py), and with many rules they
    # cost more than the plan: the canonical line counts them; LOG_LEVEL=DEBUG spells them
    # out, and `dealkeeper explain` shows them for any one event.
    if log.isEnabledFor(logging.DEBUG):
        return dict(plan.reasons_not_fired)
    return len(plan.reasons_not_fired)


def _write_bookkeeping(
    context: JobContext,
    outcome: str,
    *,
    event: Event,
    plan: Plan | None,
    job_id: str | None,
    result: Outcome,
    lock: OpportunityLock | None,
    also: Callable[[Any], None] | None,
) -> None:
    with context.connection.pipeline(transaction=True) as pipe:
        if lock is not None:
            # First, so its reply is the first one; the counts below land with it (MULTI).
            lock.release_on(pipe)
        if also is not None:
            also(pipe)
        if outcome in WRITTEN and plan is not None:
            context.loop_guard.count(plan.opportunity_id, plan.update, target=pipe)
            context.stats.observe_lag_since(event.date_created, target=pipe)
        if outcome == "not_taken":
            context.stats.incr("writes_not_taken_total", target=pipe)
        if job_id is not None:
            remove_pending(pipe, event, job_id=job_id)
            forget_results(pipe, job_id)
        context.stats.incr("events_total", target=pipe, outcome=outcome)
        for rule in plan.fired if plan is not None else ():
            context.stats.incr("rules_fired_total", target=pipe, rule=rule)
        context.stats.flush_deferred(pipe)
        for writer in context.finish_writers:
            writer(pipe, event, plan, result)
        # A command Redis refuses (a key of the wrong type) is logged, not a reason to run
        # an applied event again; a lost connection still raises, and RQ retries the job.
        replies = pipe.execute(raise_on_error=False)
    if lock is not None and not isinstance(replies[0], Exception):
        lock.released()  # else the job's `with` gives it back on its own
    for reply in replies:
        if isinstance(reply, Exception):
            log.warning("bookkeeping_not_recorded", extra={"reason": str(reply)})


def _result(outcome: str, event: Event, plan: Plan | None) -> Outcome:
    result: Outcome = {"outcome": outcome, "event_type": event.name}
    close_status = CLOSE_STATUS_BY_OUTCOME.get(outcome)
    if close_status is not None:
        result["close_status"] = close_status
    if plan is None:
        return result
    result.update(fired=list(plan.fired), update=dict(plan.update))
    if plan.dry_run_update:
        result["dry_run_update"] = dict(plan.dry_run_update)
    if plan.ignored:
        result["ignored"] = plan.ignored
    stale = [d.field for d in plan.dropped if d.rule == ""]
    if stale:
        result["dropped_as_stale"] = stale
    return result
