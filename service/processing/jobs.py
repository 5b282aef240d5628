"""The RQ job: one event in, at most one Close call out.

    own change? -> plan (last good rules) -> nothing to do
                -> its turn (older events of the opportunity first) -> lock the opportunity
                -> re-read it, keep what still holds (no stale writes) -> loop guard -> one PUT

This is the one module that joins the pure core to the adapters. Collaborators come in a
JobContext; workers install one at start (tests install their own).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import redis
from rq import Retry, get_current_job

from service.adapters.activity import Activity
from service.adapters.authfault import KeyGate
from service.adapters.close import close_api_for, opportunity_path
from service.adapters.history import History
from service.adapters.locks import OpportunityLock
from service.adapters.loopguard import LoopGuard
from service.adapters.metadata import MetadataCache
from service.adapters.ordering import any_older, predecessors, read_older_on
from service.adapters.organization import OrganizationWatch, refusal
from service.adapters.ownwrites import OwnWrites, Sent
from service.adapters.parked import REFUSAL_META
from service.adapters.ratelimit import SharedRateLimiter
from service.adapters.rulefiles import RulesHolder
from service.adapters.stats import Stats
from service.adapters.sweepstore import SweepStore
from service.adapters.unknownfields import UnknownFieldsWatch
from service.config import defaults
from service.config.errors import (
    CloseClientError,
    CloseNotFoundError,
    CloseRateLimitedError,
    LoopSuspectedError,
    NotYetDueError,
    OpportunityBusyError,
)
from service.config.settings import Settings
from service.core.events import Event, event_from_dict, require_payload
from service.core.reconcile import OwnWrite, held_parts, reconcile, with_own_writes
from service.core.rules import Metadata, Plan, RuleSet, make_plan
from service.core.rules.evaluation.texts import MAX_TEXT_CHARS
from service.core.writecheck import field_names, not_taken
from service.observability import logs
from service.processing.context import JobContext, Outcome
from service.processing.finish import finish

log = logging.getLogger("dealkeeper.jobs")
# How long a job waits in-process for an older event of its opportunity that is running.
ORDER_WAIT_SEC = 2.0
ORDER_POLL_SEC = 0.02


@dataclass(frozen=True)
class Planned:
    """A plan with what it was made from, so it can be checked again before writing."""

    plan: Plan
    ruleset: RuleSet
    metadata: Metadata | None
    own_api_key_ids: frozenset[str]


@dataclass(frozen=True)
class Held:
    """The opportunity's lock, with what was read when it was taken."""

    lock: OpportunityLock
    loop_counts: dict[str, int]
    own_writes: tuple[OwnWrite, ...] = ()  # our recent writes to it, oldest first
    older_listed: bool = False  # older events of the opportunity were listed: not its turn


_installed: JobContext | None = None


def build_context(settings: Settings, *, connection: redis.Redis) -> JobContext:
    """The production collaborators for the given settings."""
    limiter = SharedRateLimiter(
        connection,
        rate_per_sec=settings.tuning.close_rate_limit_per_sec,
        max_inline_wait_sec=defaults.MAX_INLINE_RETRY_WAIT_SEC,
    )
    stats = Stats(connection)
    close = close_api_for(
        settings,
        throttle=limiter,
        observer=stats.observe_close,
        read_timeout_sec=settings.tuning.close_read_timeout_sec,
    )
    # Without a key there is nothing to read metadata from: rules then name fields as written.
    readable = close if settings.close_api_key else None
    context = JobContext(
        rules=RulesHolder(
            settings.rules_path, check_interval_sec=defaults.RULES_CHECK_INTERVAL_SEC
        ),
        close=close,
        metadata=MetadataCache(readable, ttl_sec=defaults.METADATA_TTL_SEC),
        own_writes=OwnWrites(connection),
        connection=connection,
        stats=stats,
        loop_guard=LoopGuard(
            connection, max_writes_per_hour=settings.tuning.loop_max_writes_per_hour
        ),
        throttle=limiter,
        dry_run=settings.dry_run,
        job_timeout_sec=settings.tuning.job_timeout_sec,
        catchup_interval_sec=settings.tuning.catchup_interval_sec,
    )
    if settings.close_api_key:
        context.organization = OrganizationWatch(connection, close)
        context.key_gate = KeyGate(connection, close, api_key=settings.close_api_key)
        context.unknown_fields = UnknownFieldsWatch(connection)
    context.finish_writers.append(History(connection).record_finished)
    context.finish_writers.append(Activity(connection).record_finished)
    context.finish_writers.append(SweepStore(connection).record_outcome)
    return context


def install(context: JobContext | None) -> None:
    """Make `context` the one jobs in this process use."""
    global _installed
    _installed = context


def installed() -> JobContext:
    if _installed is None:
        raise RuntimeError("no JobContext installed: start workers with `dealkeeper worker`")
    return _installed


def process_event(event_data: dict[str, Any]) -> Outcome | Retry:
    """RQ entry point: a result to keep, or a Retry when the event must wait its turn."""
    event = require_payload(event_from_dict(event_data))  # parked if not: a human must look
    job = get_current_job()
    job_id = job.id if job else None
    fields = {"event_id": event.id, "object_id": event.object_id, "action": event.action}
    with logs.bound(**fields, job_id=job_id):
        return _process(event, job_id=job_id)


def _process(event: Event, *, job_id: str | None) -> Outcome | Retry:
    context = installed()
    try:
        # Close's answers are counted in the job's final pipeline, not one round trip each.
        with context.stats.deferred():
            return handle_event(event, context=context, job_id=job_id)
    except NotYetDueError as error:
        log.info("event_rescheduled", extra={"reason": str(error)})
        interval = 0 if error.queued_only else 1
        return Retry(max=defaults.JOB_MAX_RESCHEDULES, interval=interval)
    except OpportunityBusyError:
        log.info("event_rescheduled", extra={"reason": "opportunity busy"})
        return Retry(max=defaults.JOB_MAX_RESCHEDULES, interval=defaults.OPPORTUNITY_BUSY_RETRY_SEC)
    except CloseRateLimitedError as error:
        wait = math.ceil(error.retry_after_sec + random.uniform(0, 1))
        log.warning("event_rescheduled", extra={"reason": "rate limited", "wait_sec": wait})
        return Retry(max=defaults.JOB_MAX_RESCHEDULES, interval=wait)
    except CloseClientError as error:
        refused = None if context.key_gate is None else context.key_gate.judge(error)
        if refused is None:
            log.exception("event_failed")
            raise
        # Said once for all workers at ERROR (close_key_refused); the worker requeues it.
        log.info("event_held_back", extra={"reason": str(refused)})
        raise refused from error
    except Exception:
        # The boundary: log with the traceback, then let RQ retry or park the job.
        log.exception("event_failed")
        raise


def handle_event(event: Event, *, context: JobContext, job_id: str | None = None) -> Outcome:
    """Decide and, when needed, make the one call for this event."""
    started = time.perf_counter()
    refused = _other_organization(event, context)
    if refused is not None:
        with logs.bound(**refused):  # on finish's one line, `event_of_other_organization`
            return finish(context, "other_organization", started, event=event, job_id=job_id)
    if context.own_writes.is_own(event):
        return finish(context, "own_change", started, event=event, job_id=job_id)
    planned = plan_event(event, context=context)
    if not planned.plan.has_update and held_parts(planned.plan):
        planned = _after_own_writes(planned, event=event, context=context)
    if planned.plan.ignored or not planned.plan.has_update:
        return finish(context, "no_update", started, event=event, plan=planned.plan, job_id=job_id)
    with _turn_and_lock(planned.plan, event=event, context=context, job_id=job_id) as held:
        return _apply(
            planned, event=event, context=context, started=started, job_id=job_id, held=held
        )


def _other_organization(event: Event, context: JobContext) -> dict[str, Any] | None:
    """For an event of an organization our key does not belong to (queued before the web
    knew ours), what to log instead of reading or writing anything; None for ours."""
    known = frozenset() if context.organization is None else context.organization.known
    reason = refusal(event, known)
    if reason is None:
        return None
    return {
        "organization_id": event.organization_id,
        "known_organizations": sorted(known),
        "reason": reason,
    }


@contextmanager
def _turn_and_lock(
    plan: Plan, *, event: Event, context: JobContext, job_id: str | None
) -> Iterator[Held]:
    """Hold the opportunity once older events of it have gone first (NotYetDueError while
    they wait).

    Usually none are listed: the lock is taken with that check, the loop guard's counts and
    the rate-limit slots of the GET and the PUT in one round trip. Otherwise the lock is
    given back at once and the turn awaited as before, outside the lock, so the older
    event's job can take it.
    """
    held = _lock(plan, event=event, context=context, job_id=job_id)
    try:
        if held.older_listed:
            held.lock.release()
            _wait_for_turn(event, context=context, job_id=str(job_id))
            held = _lock(plan, event=event, context=context, job_id=None)
        yield held
    finally:
        held.lock.release()
        if context.throttle is not None:
            context.throttle.forget_prepaid()


def _lock(plan: Plan, *, event: Event, context: JobContext, job_id: str | None) -> Held:
    """The opportunity's lock, taken with the loop guard's counts (only its holder adds to
    them), the events listed before this one (when `job_id`: it is to wait its turn) and
    the slots of the GET and PUT that follow (a write slot goes unused when the re-read
    finds the update stale: never more requests than the pace allows, at worst fewer)."""
    path = opportunity_path(plan.opportunity_id)
    throttle = None if context.dry_run else context.throttle

    def reads(pipe: Any) -> None:
        context.loop_guard.read_on(pipe, plan.opportunity_id, plan.update)
        context.own_writes.read_on(pipe, plan.opportunity_id)
        if job_id is not None:
            read_older_on(pipe, event)
        if throttle is not None:
            throttle.take_on(pipe, "GET", path)
            throttle.take_on(pipe, "PUT", path)

    # A killed holder's lock lapses soon after its last renewal, or without a worker's
    # renewals when its job could no longer be running.
    renewed = context.in_hand is not None
    lock = OpportunityLock(
        context.connection,
        event.object_id,
        ttl_sec=defaults.JOB_KEEPALIVE_TTL_SEC
        if renewed
        else context.job_timeout_sec + defaults.HEARTBEAT_MARGIN_SEC,
        wait_sec=min(context.lock_wait_sec, context.job_timeout_sec / 4),
    )
    lock.acquire(reads)
    if context.in_hand is not None:
        context.in_hand.keep(lock)
    replies = iter(lock.replies)
    counts = context.loop_guard.counts_from(plan.update, next(replies))
    own_writes = context.own_writes.writes_from(next(replies))
    older = job_id is not None and any_older(next(replies), job_id=job_id)
    if throttle is not None:
        throttle.took("GET", path, next(replies))
        throttle.took("PUT", path, next(replies))
    return Held(lock, counts, own_writes, older_listed=older)


def plan_event(event: Event, *, context: JobContext) -> Planned:
    """The plan, asking Close again for its metadata once when a name is unknown."""
    ruleset: RuleSet = context.rules.current()
    # The engine only looks these up for the event's own api_key_id: without one (a person's
    # change), asking Redis for them would be a round trip that cannot matter.
    own = context.own_writes.known_key_ids() if event.api_key_id else frozenset()
    metadata = context.metadata.get()
    plan = make_plan(ruleset, event, metadata=metadata, own_api_key_ids=own)
    if plan.unresolved and metadata is not None:
        refreshed = context.metadata.refresh()
        if refreshed is not metadata:
            metadata = refreshed
            plan = make_plan(ruleset, event, metadata=metadata, own_api_key_ids=own)
        if plan.unresolved:
            # Said at WARNING once per change, for all workers (rule_fields_unknown).
            log.debug("names_unresolved", extra={"names": list(plan.unresolved)})
    if context.unknown_fields is not None:
        context.unknown_fields.check(ruleset, metadata)
    _log_conflicts(plan)
    _log_truncations(plan)
    return Planned(plan, ruleset, metadata, own)


def _after_own_writes(planned: Planned, *, event: Event, context: JobContext) -> Planned:
    """The plan again when our own answers to older events reached Close after this event
    happened, where they touched what the event's state held: a part that was left out as
    already holding may hold no longer (reconcile works it out again before the write)."""
    seen = with_own_writes(event, context.own_writes.read(event.object_id))
    if seen is event:
        return planned
    plan = make_plan(
        planned.ruleset, seen, metadata=planned.metadata, own_api_key_ids=planned.own_api_key_ids
    )
    return replace(planned, plan=plan)


def _log_conflicts(plan: Plan) -> None:
    for conflict in plan.conflicts:
        log.warning(
            "rule_conflict_resolved",
            extra={
                "field": conflict.field,
                "winner": conflict.later_rule,
                "loser": conflict.earlier_rule,
                "kept": conflict.later_value,
                "dropped": conflict.earlier_value,
            },
        )


def _log_truncations(plan: Plan) -> None:
    # Lengths only: the text is typed by anyone in Close and may be personal data.
    for cut in plan.truncated:
        log.warning(
            "value_truncated",
            extra={
                "field": cut.field,
                "length": cut.length,
                "kept": MAX_TEXT_CHARS,
                "previous": cut.previous,
            },
        )


def _wait_for_turn(event: Event, *, context: JobContext, job_id: str) -> None:
    """Let older events of the same opportunity go first (NotYetDueError while they wait)."""
    deadline = time.monotonic() + ORDER_WAIT_SEC
    while True:
        waiting = predecessors(context.connection, event, job_id=job_id)
        if not waiting:
            return
        queued_only = all(status == b"queued" for status in waiting.values())
        if queued_only or time.monotonic() > deadline:
            raise NotYetDueError(
                f"{len(waiting)} older event(s) of {event.object_id} go first",
                queued_only=queued_only,
            )
        time.sleep(ORDER_POLL_SEC)


def _apply(
    planned: Planned,
    *,
    event: Event,
    context: JobContext,
    started: float,
    job_id: str | None,
    held: Held,
) -> Outcome:
    written = Written(planned.plan, "dry_run")
    if not context.dry_run:
        written = _write(planned, event=event, context=context, held=held)
    return finish(
        context,
        written.outcome,
        started,
        event=event,
        plan=written.plan,
        job_id=job_id,
        lock=held.lock,
        also=written.bookkeeping,
        not_taken=field_names(written.not_taken),
    )


@dataclass(frozen=True)
class Written:
    """How a write ended: the plan as sent, the outcome, what the job's final pipeline is
    to record of it (when and what of the receipt's write Close took), and the keys Close
    answered 200 without taking."""

    plan: Plan
    outcome: str
    bookkeeping: Callable[[Any], None] | None = None
    not_taken: tuple[str, ...] = ()


def _write(planned: Planned, *, event: Event, context: JobContext, held: Held) -> Written:
    """Send what the deal, read again now, still needs."""
    plan = planned.plan
    try:
        # One read per write: the update must still be right for the deal as it is now.
        current = context.close.get_opportunity(plan.opportunity_id)
        plan = reconcile(
            plan,
            event,
            current,
            ruleset=planned.ruleset,
            metadata=planned.metadata,
            own_api_key_ids=planned.own_api_key_ids,
            own_writes=held.own_writes,
        )
        if not plan.has_update:
            return Written(plan, "stale")
        _guard_against_loops(plan, context=context, known=held.loop_counts)
        receipt = context.own_writes.expect(
            plan.opportunity_id, plan.update, event_at=event.date_created
        )
        after = context.close.update_opportunity(
            plan.opportunity_id, plan.update, tz_offset_hours=plan.tz_offset_hours
        )
    except CloseNotFoundError:
        return Written(plan, "opportunity_gone")
    except CloseClientError as error:
        _keep_refusal(error, plan)
        raise
    return _answered(plan, receipt, before=current, after=after, metadata=planned.metadata)


def _keep_refusal(error: CloseClientError, plan: Plan) -> None:
    """Keep on the job what Close refused and which rules asked for it, for `dealkeeper
    failed` and the console's parked page: the reason RQ keeps is the exception's text
    alone, which does not name the rules. Best effort, and only on a refusal (rare)."""
    job = get_current_job()
    if job is None:
        return
    # Close's status and text are in the reason already; the update stays out too: each
    # byte here is kept for every parked event (docs/redis.md).
    job.meta[REFUSAL_META] = {
        "rules": list(plan.fired),
        "field_errors": {str(k): str(v) for k, v in error.field_errors.items()},
    }
    try:
        job.save_meta()  # type: ignore[no-untyped-call]
    except redis.RedisError as failure:
        log.warning("refusal_not_kept", extra={"error": str(failure)})


def _answered(
    plan: Plan,
    receipt: Sent,
    *,
    before: dict[str, Any],
    after: dict[str, Any],
    metadata: Metadata | None,
) -> Written:
    """The write as Close's 200 shows it: applied, or not taken where Close ignored keys
    (the receipt then keeps only what it took: the echo of the write shows nothing else)."""
    missed = not_taken(plan.update, before=before, after=after, metadata=metadata)
    if not missed:
        return Written(plan, "applied", receipt.landed_on(after.get("date_updated")))
    taken = {k: v for k, v in plan.update.items() if k not in missed}
    landed = receipt.landed_on(after.get("date_updated"), taken=taken)
    return Written(plan, "not_taken", landed, not_taken=missed)


def _guard_against_loops(plan: Plan, *, context: JobContext, known: dict[str, int]) -> None:
    worn = context.loop_guard.exhausted(plan.opportunity_id, plan.update, known=known)
    if worn:
        limit = context.loop_guard.max_writes
        raise LoopSuspectedError(
            f"loop suspected: dealkeeper already wrote {', '.join(worn)} of "
            f"{plan.opportunity_id} {limit} times in the last hour (rules that fired: "
            f"{', '.join(plan.fired)}); the event is parked and the field left alone. "
            "Fix the rules, then run `dealkeeper failed retry` on it."
        )
