"""Catch-up from Close's event log: queue what webhooks did not bring.

Close drops a delivery after 72 hours of failures, clears a paused subscription's queue,
and anything can happen while dealkeeper is down. The event log keeps 30 days. Catch-up
reads opportunity events updated since a checkpoint (minus five minutes, as Close advises:
recent events can still appear or be consolidated), and queues each through the same
dedupe as webhooks, so an event both delivered and read is processed once.

It runs on demand (`dealkeeper catch-up --since 2h`) and, inside the workers, every
DEALKEEPER_CATCHUP_INTERVAL seconds through RQ's scheduler: each period's run has a fixed
job id and a Redis guard, so any number of workers schedule it once.

Close shows a non-admin API key an event's `data` and `previous_data` only for an hour.
An older event read without them is left for Close's webhook retries, which carry the data:
queued as it is, it would be judged on an empty opportunity and its dedupe record would
turn the retry away as a duplicate. It is counted and logged, with what to do.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue

from service.adapters.close import JSONAPI
from service.adapters.eventlog import earliest_available, read_events
from service.adapters.queue import enqueue_event, make_queue, queued_before
from service.adapters.stats import Stats
from service.config import defaults
from service.core.events import EnvelopeError, event_from_dict, parse_close_time
from service.core.status import CatchUpRun
from service.processing import jobs

log = logging.getLogger("dealkeeper.catchup")
CHECKPOINT_KEY = "dk:catchup:checkpoint"
GUARD_PREFIX = "dk:catchup:scheduled:"
JOB_FUNCTION = "service.processing.catchup.scheduled_catch_up"
NO_PAYLOAD_ADVICE = (
    "catch-up needs an admin's API key to read events older than an hour; with a "
    "non-admin key, a sweep is the way to recover longer outages"
)
MAX_EVENT_IDS_SHOWN = 50  # the count is exact; a line need not list a month of ids


@dataclass(frozen=True)
class CatchUpResult:
    """What one catch-up read and did."""

    read: int
    queued: int
    duplicates: int
    skipped: int  # not opportunity events, or not readable as events
    # Read without their data (a non-admin key, events over an hour old), never seen
    # before: left for Close's webhook retries.
    no_payload: int = 0
    no_payload_ids: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """The counts, for the log line and the job's result."""
        names = ("read", "queued", "duplicates", "skipped", "no_payload")
        return {name: getattr(self, name) for name in names}


def catch_up(
    client: JSONAPI,
    *,
    queue: Queue,
    since: datetime,
    until: datetime | None = None,
    job_timeout_sec: int = defaults.JOB_TIMEOUT_SEC,
) -> CatchUpResult:
    """Queue every opportunity event of the log in [since, until) that is not queued yet;
    leave those read without their data (see the module's docs)."""
    raw_events = read_events(client, since=since, until=until)
    queued = duplicates = skipped = 0
    left: list[str] = []
    for raw in raw_events:
        try:
            event = event_from_dict(raw)
        except EnvelopeError:
            skipped += 1
            continue
        if event.payload_missing:  # never queued: the webhook's retry carries the data
            if queued_before(event, queue=queue):
                duplicates += 1
            else:
                left.append(event.id)
            continue
        result = enqueue_event(event, queue=queue, job_timeout_sec=job_timeout_sec)
        duplicates += result.duplicate
        queued += not result.duplicate
    _warn_without_data(left)
    return CatchUpResult(len(raw_events), queued, duplicates, skipped, len(left), tuple(left))


def _warn_without_data(event_ids: list[str]) -> None:
    if not event_ids:
        return
    log.warning(
        "catch_up_events_without_data",
        extra={
            "count": len(event_ids),
            "event_ids": event_ids[:MAX_EVENT_IDS_SHOWN],
            "advice": f"left for Close's webhook retries; {NO_PAYLOAD_ADVICE}",
        },
    )


def record_run(stats: Stats, result: CatchUpResult, *, at: float) -> None:
    """Keep the run's counts for `dealkeeper status`."""
    stats.record_catch_up(CatchUpRun(at=at, **result.counts()))


def checkpoint(connection: redis.Redis) -> datetime | None:
    """Where the last automatic catch-up started, if it ever ran."""
    raw = connection.get(CHECKPOINT_KEY)
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return parse_close_time(text, what="checkpoint")


def next_window_start(connection: redis.Redis, *, now: datetime) -> datetime:
    """The checkpoint minus Close's five minutes, within the 30 days the log keeps."""
    last = checkpoint(connection)
    if last is None:
        start = now - timedelta(seconds=defaults.CATCHUP_FIRST_LOOKBACK_SEC)
    else:
        start = last - timedelta(seconds=defaults.CATCHUP_OVERLAP_SEC)
    return max(start, earliest_available(now) + timedelta(minutes=1))


def scheduled_catch_up() -> dict[str, int]:
    """RQ job: catch up since the checkpoint, move it, and schedule the next run."""
    context = jobs.installed()
    queue = make_queue(context.connection)
    if context.catchup_interval_sec <= 0 or context.dry_run:
        return {"skipped": 1}
    started = datetime.now(UTC)
    since = next_window_start(context.connection, now=started)
    result = catch_up(
        context.close, queue=queue, since=since, job_timeout_sec=context.job_timeout_sec
    )
    context.connection.set(CHECKPOINT_KEY, started.isoformat())
    record_run(context.stats, result, at=started.timestamp())
    log.info("catch_up_finished", extra={"since": since.isoformat(), **result.counts()})
    schedule_next(queue, interval_sec=context.catchup_interval_sec)
    return result.counts()


def schedule_next(queue: Queue, *, interval_sec: int, now: float | None = None) -> str | None:
    """Schedule the run of the next period, once across all processes; its job id, or
    None when another process already did."""
    moment = time.time() if now is None else now
    period = math.floor(moment / interval_sec) + 1
    guard = f"{GUARD_PREFIX}{period}"
    if not queue.connection.set(guard, 1, nx=True, ex=2 * interval_sec + 60):
        return None
    job_id = f"catchup-{period}"
    run_at = datetime.fromtimestamp(period * interval_sec, tz=UTC)
    queue.enqueue_at(
        run_at, JOB_FUNCTION, job_id=job_id, job_timeout=10 * 60, result_ttl=interval_sec * 2
    )
    return job_id
