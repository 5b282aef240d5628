"""The RQ job: one event in, at most one Close call out.

    event -> own change? -> rules (last good set) -> plan -> nothing to do | dry-run | one PUT

This is the one module that joins the pure core to the adapters. Collaborators come in a
JobContext; workers install one at start (tests install their own).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import redis
from rq import Retry, get_current_job

from service import defaults, logs
from service.adapters.close import CloseAPI, close_api_for
from service.adapters.metadata import MetadataCache
from service.adapters.ownwrites import OwnWrites
from service.adapters.queue import opportunity_lock
from service.adapters.rulefiles import RulesHolder
from service.adapters.stats import Stats
from service.errors import CloseNotFoundError, CloseRateLimitedError, OpportunityBusyError
from service.events import Event, event_from_dict
from service.rules import Plan, RuleSet, make_plan
from service.settings import Settings

log = logging.getLogger("dealkeeper.jobs")


@dataclass
class JobContext:
    """Everything a job needs, built once per worker process."""

    rules: RulesHolder
    close: CloseAPI
    metadata: MetadataCache
    own_writes: OwnWrites
    connection: redis.Redis
    stats: Stats
    dry_run: bool = False  # plans are logged, nothing is written to Close
    lock_wait_sec: float = defaults.OPPORTUNITY_LOCK_WAIT_SEC


_installed: JobContext | None = None


def build_context(settings: Settings, *, connection: redis.Redis) -> JobContext:
    """The production collaborators for the given settings."""
    close = close_api_for(settings)
    # Without a key there is nothing to read metadata from: rules then name fields as written.
    readable = close if settings.close_api_key else None
    return JobContext(
        rules=RulesHolder(
            settings.rules_path, check_interval_sec=defaults.RULES_CHECK_INTERVAL_SEC
        ),
        close=close,
        metadata=MetadataCache(readable, ttl_sec=defaults.METADATA_TTL_SEC),
        own_writes=OwnWrites(connection, receipt_ttl_sec=defaults.WRITE_RECEIPT_TTL_SEC),
        connection=connection,
        stats=Stats(connection),
        dry_run=settings.dry_run,
    )


def install(context: JobContext | None) -> None:
    """Make `context` the one jobs in this process use."""
    global _installed
    _installed = context


def installed() -> JobContext:
    if _installed is None:
        raise RuntimeError("no JobContext installed: start workers with `dealkeeper worker`")
    return _installed


def process_event(event_data: dict[str, Any]) -> dict[str, Any] | Retry:
    """RQ entry point: a result to keep, or a Retry when the event must wait its turn."""
    event = event_from_dict(event_data)
    job = get_current_job()
    fields = {"event_id": event.id, "object_id": event.object_id, "action": event.action}
    with logs.bound(**fields, job_id=job.id if job else None):
        return _process(event)


def _process(event: Event) -> dict[str, Any] | Retry:
    try:
        return handle_event(event, context=installed())
    except OpportunityBusyError:
        log.info("event_rescheduled", extra={"reason": "opportunity busy"})
        return Retry(max=defaults.JOB_MAX_RESCHEDULES, interval=defaults.OPPORTUNITY_BUSY_RETRY_SEC)
    except CloseRateLimitedError as error:
        wait = math.ceil(error.retry_after_sec + random.uniform(0, 1))
        log.warning("event_rescheduled", extra={"reason": "rate limited", "wait_sec": wait})
        return Retry(max=defaults.JOB_MAX_RESCHEDULES, interval=wait)
    except Exception:
        # The boundary: log with the traceback, then let RQ retry or park the job.
        log.exception("event_failed")
        raise


def handle_event(event: Event, *, context: JobContext) -> dict[str, Any]:
    """Decide and, when needed, make the one call for this event."""
    started = time.perf_counter()
    if context.own_writes.is_own(event):
        return _finish(context, "own_change", started, event=event)
    plan = plan_event(event, context=context)
    if plan.ignored or not plan.has_update:
        return _finish(context, "no_update", started, event=event, plan=plan)
    with opportunity_lock(context.connection, event.object_id, wait_sec=context.lock_wait_sec):
        return _apply(plan, context=context, started=started, event=event)


def plan_event(event: Event, *, context: JobContext) -> Plan:
    """The plan, asking Close again for its metadata once when a name is unknown."""
    ruleset: RuleSet = context.rules.current()
    own = context.own_writes.known_key_ids()
    metadata = context.metadata.get()
    plan = make_plan(ruleset, event, metadata=metadata, own_api_key_ids=own)
    if plan.unresolved and metadata is not None:
        refreshed = context.metadata.refresh()
        if refreshed is not metadata:
            plan = make_plan(ruleset, event, metadata=refreshed, own_api_key_ids=own)
        if plan.unresolved:
            log.warning("names_unresolved", extra={"names": list(plan.unresolved)})
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
    return plan


def _apply(plan: Plan, *, context: JobContext, started: float, event: Event) -> dict[str, Any]:
    if context.dry_run:
        return _finish(context, "dry_run", started, event=event, plan=plan)
    context.own_writes.expect(plan.opportunity_id, plan.update)
    try:
        context.close.update_opportunity(
            plan.opportunity_id, plan.update, tz_offset_hours=plan.tz_offset_hours
        )
    except CloseNotFoundError:
        return _finish(context, "opportunity_gone", started, event=event, plan=plan)
    return _finish(context, "applied", started, event=event, plan=plan)


_LOG_EVENTS = {
    "applied": "plan_applied",
    "dry_run": "plan_applied",
    "no_update": "plan_skipped",
    "own_change": "event_ignored",
    "opportunity_gone": "opportunity_gone",
}


def _finish(
    context: JobContext, outcome: str, started: float, *, event: Event, plan: Plan | None = None
) -> dict[str, Any]:
    """Count, write the one canonical log line, and return the job's result."""
    result: dict[str, Any] = {"outcome": outcome, "event_type": event.name}
    if plan is not None:
        result.update(fired=list(plan.fired), update=dict(plan.update))
        if plan.dry_run_update:
            result["dry_run_update"] = dict(plan.dry_run_update)
        if plan.ignored:
            result["ignored"] = plan.ignored
        for rule in plan.fired:
            context.stats.incr("rules_fired_total", rule=rule)
    context.stats.incr("events_total", outcome=outcome)
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
    extra = {**result, "dry_run": outcome == "dry_run"}
    if plan is not None and plan.reasons_not_fired:
        extra["not_fired"] = dict(plan.reasons_not_fired)
    level = logging.WARNING if outcome == "opportunity_gone" else logging.INFO
    log.log(level, _LOG_EVENTS[outcome], extra=extra)
    return result
