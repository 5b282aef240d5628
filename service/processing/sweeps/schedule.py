"""Sweeps on their schedules, through RQ's scheduler, once per scheduled time.

Every worker plans at each of RQ's maintenance rounds (at its start, then about every
DEALKEEPER_MAINTENANCE_INTERVAL seconds): it looks at the sweep rules in force, edited ones
included, and schedules with `enqueue_at` each run due in the next ten minutes, plus the
latest run that fell due in the last three minutes and was not scheduled yet (a worker
that starts at 06:01 still runs the 06:00 sweep; older misses are superseded by it). Each
run has a fixed job id and a guard per (sweep, time): however many workers plan, there is
one job, and RQ's scheduler (one per queue) moves it to the queue on time.

A run works in slices: it lists pages for up to SLICE_SEC, saves its checkpoint after each
page, then queues its next slice, so event jobs are not held up behind a long sweep and a
slice killed with its worker is retried from the checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from service.adapters.queue import enqueue_event, make_queue
from service.adapters.rulefiles import RulesHolder
from service.adapters.sweepstore import SweepStore, enqueue_job, schedule_job
from service.config import defaults
from service.config.errors import CloseRateLimitedError, InvalidRulesError, QueueUnavailableError
from service.core.events import Event, parse_close_time
from service.core.rules import Rule, RuleSet
from service.core.rules.cron import occurrences
from service.processing import jobs
from service.processing.context import JobContext
from service.processing.sweeps.paging import PagingStalledError
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.run import Sweeper, run_sweep

log = logging.getLogger("dealkeeper.sweeps")
RUN_JOB = "service.processing.sweeps.schedule.run_scheduled_sweep"
LOOKAHEAD_SEC = 10 * 60
LOOKBACK_SEC = 3 * 60
GUARD_TTL_SEC = 2 * 24 * 3600  # outlives the look-back and look-ahead by far
# A finished run's checkpoint says "done" for as long as its guard keeps it from being
# planned again; an unfinished one is resumed well within that.
CHECKPOINT_TTL_SEC = GUARD_TTL_SEC
SLICE_SEC = 20.0
SLICE_TIMEOUT_SEC = 120
# A slice holds its sweep for at most its timeout; the hold of a killed one has lapsed by the
# time RQ finds the job abandoned (its heartbeat: the timeout plus the same margin).
LOCK_TTL_SEC = SLICE_TIMEOUT_SEC + defaults.HEARTBEAT_MARGIN_SEC
BUSY_RETRY_SEC = 30
MAX_POSTPONE_SEC = 3600  # whatever a rate limit says, a run looks again within the hour
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # RQ 2.8+ accepts only these in job ids


def run_times(rule: Rule, *, now: datetime) -> list[datetime]:
    """The runs to schedule at `now`: the latest one due lately, and the coming ones."""
    if rule.sweep is None or not rule.enabled:
        return []
    schedule, tz = rule.sweep.schedule, rule.timezone
    due = occurrences(schedule, after=now - timedelta(seconds=LOOKBACK_SEC), until=now, tz=tz)
    ahead = now + timedelta(seconds=LOOKAHEAD_SEC)
    return due[-1:] + occurrences(schedule, after=now, until=ahead, tz=tz)


def plan_runs(ruleset: RuleSet, *, store: SweepStore, now: datetime) -> list[str]:
    """Schedule every run due now or soon that no process scheduled yet; their job ids."""
    scheduled = []
    for rule in ruleset.sweep_rules:
        for at in run_times(rule, now=now):
            epoch = int(at.timestamp())
            if store.claim(rule.name, epoch=epoch, ttl_sec=GUARD_TTL_SEC):
                scheduled.append(_schedule_run(store, name=rule.name, at=at))
    return scheduled


def _schedule_run(store: SweepStore, *, name: str, at: datetime) -> str:
    """The run's job, at its time; a job Redis did not take gives the claim back, so the
    next planning tries again."""
    epoch = int(at.timestamp())
    job_id = run_job_id(name, epoch=epoch, part=0)
    try:
        schedule_job(
            store.connection, RUN_JOB, at=at, args=(name, at.isoformat(), 0), job_id=job_id,
            timeout_sec=SLICE_TIMEOUT_SEC,
        )  # fmt: skip
    except QueueUnavailableError:
        store.unclaim(name, epoch=epoch)
        raise
    return job_id


def run_job_id(sweep: str, *, epoch: int, part: int) -> str:
    """`sweep-<name>-<epoch>-<part>`; a name with characters RQ refuses in job ids gets
    them replaced and a hash of the name, so two names stay two ids."""
    raw = f"sweep-{sweep}-{epoch}-{part}"
    safe = _JOB_ID_UNSAFE.sub("_", raw)
    return safe if safe == raw else f"{safe}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def plan_safely(holder: RulesHolder, *, store: SweepStore) -> list[str]:
    """Plan the sweeps of the rules in force; a failure is logged and left to the next try
    (a worker calls this at every maintenance, so a Redis blip costs nothing)."""
    if not holder.is_ready:
        return []
    try:
        scheduled = plan_runs(holder.current(), store=store, now=datetime.now(UTC))
    except (QueueUnavailableError, InvalidRulesError) as error:
        log.warning("sweeps_not_planned", extra={"error": str(error)})
        return []
    if scheduled:
        log.info("sweeps_scheduled", extra={"job_ids": scheduled})
    return scheduled


def run_scheduled_sweep(name: str, at: str, part: int = 0) -> dict[str, Any]:
    """RQ job: one slice of the run of sweep `name` scheduled at `at`."""
    context = jobs.installed()
    moment = parse_close_time(at, what="at")
    ruleset = context.rules.current()
    rule, reason = current_rule(ruleset, name=name, moment=moment, first=part == 0)
    if rule is None:
        log.info("sweep_skipped", extra={"sweep": name, "at": at, "reason": reason})
        return {"skipped": reason}
    store = SweepStore(context.connection)
    with store.lock(name, ttl_sec=LOCK_TTL_SEC) as held:
        if held is None:
            _continue_later(store, name, at, part=part, wait_sec=BUSY_RETRY_SEC, busy=True)
            return {"busy": True}
        return _slice(rule, context=context, store=store, moment=moment, part=part)


def current_rule(
    ruleset: RuleSet, *, name: str, moment: datetime, first: bool
) -> tuple[Rule | None, str]:
    """The sweep rule to run, or None and why the run is skipped (removed, disabled, or,
    for a run not started yet, a schedule that no longer names its time)."""
    rule = ruleset.rule(name)
    if rule is None or rule.sweep is None:
        return None, "no sweep rule of that name is in force"
    if not rule.enabled:
        return None, "the rule is disabled"
    named = occurrences(
        rule.sweep.schedule, after=moment - timedelta(seconds=1), until=moment, tz=rule.timezone
    )
    if first and moment not in named:
        return None, f"its schedule ({rule.sweep.schedule.text}) no longer names this time"
    return rule, ""


def _slice(
    rule: Rule, *, context: JobContext, store: SweepStore, moment: datetime, part: int
) -> dict[str, Any]:
    epoch, started = int(moment.timestamp()), time.monotonic()
    saved = store.load(rule.name, epoch=epoch)
    progress = Progress.from_dict(saved) if saved else Progress()
    if progress.done:
        return {"done": True}

    def save(reached: Progress) -> None:
        store.save(rule.name, epoch=epoch, checkpoint=reached.to_dict(), ttl_sec=CHECKPOINT_TTL_SEC)

    try:
        progress = run_sweep(
            _sweeper(rule, context=context, moment=moment),
            progress,
            keep_going=lambda _: time.monotonic() - started < SLICE_SEC,
            on_page=save,
        )
    except CloseRateLimitedError as error:
        wait = min(math.ceil(error.retry_after_sec) + 1, MAX_POSTPONE_SEC)
        _continue_later(store, rule.name, moment.isoformat(), part=part + 1, wait_sec=wait)
        return {"rate_limited": True, "wait_sec": wait}
    except PagingStalledError as error:
        # The job fails (RQ keeps it with the error); the checkpoint stays at the last page.
        log.error(
            "sweep_stalled",
            extra={"sweep": rule.name, "at": moment.isoformat(), "error": str(error)},
        )
        raise
    if not progress.done:
        return {"continues": _next_slice(rule, store=store, moment=moment, part=part + 1)}
    return _finished(rule, store=store, moment=moment, progress=progress)


def _sweeper(rule: Rule, *, context: JobContext, moment: datetime) -> Sweeper:
    """The run, queueing its events through the same dedupe as webhooks."""
    queue = make_queue(context.connection)

    def enqueue(event: Event) -> bool:
        queued = enqueue_event(event, queue=queue, job_timeout_sec=context.job_timeout_sec)
        return not queued.duplicate

    metadata = context.metadata.get()
    return Sweeper(
        rule,
        ruleset=context.rules.current(),
        moment=moment,
        client=context.close,
        metadata=metadata,
        enqueue=enqueue,
    )


def _next_slice(rule: Rule, *, store: SweepStore, moment: datetime, part: int) -> str:
    job_id = run_job_id(rule.name, epoch=int(moment.timestamp()), part=part)
    args = (rule.name, moment.isoformat(), part)
    enqueue_job(store.connection, RUN_JOB, args=args, job_id=job_id, timeout_sec=SLICE_TIMEOUT_SEC)
    return job_id


def _continue_later(
    store: SweepStore, name: str, at: str, *, part: int, wait_sec: int, busy: bool = False
) -> None:
    epoch = int(parse_close_time(at, what="at").timestamp())
    base = run_job_id(name, epoch=epoch, part=part)
    job_id = f"{base}-{'busy' if busy else 'later'}-{time.time_ns()}"
    when = datetime.now(UTC) + timedelta(seconds=wait_sec)
    schedule_job(
        store.connection, RUN_JOB, at=when, args=(name, at, part), job_id=job_id,
        timeout_sec=SLICE_TIMEOUT_SEC,
    )  # fmt: skip
    log.info("sweep_postponed", extra={"sweep": name, "at": at, "wait_sec": wait_sec})


def _finished(
    rule: Rule, *, store: SweepStore, moment: datetime, progress: Progress
) -> dict[str, Any]:
    summary = summary_of(progress, at=moment)
    store.record_run(rule.name, summary=summary)
    log.info("sweep_finished", extra={"sweep": rule.name, **summary})
    return summary


def summary_of(progress: Progress, *, at: datetime) -> dict[str, Any]:
    """What a finished run did, for its log line and its record."""
    tally = progress.tally
    return {
        "at": at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total": progress.total,
        "pages": progress.pages,
        "listed": tally.listed,
        "matched": tally.matched,
        "queued": tally.to_update,
        "already_correct": tally.already_correct,
        "queued_before": tally.queued_before,
    }
