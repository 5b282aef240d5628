"""Collect `dealkeeper status` from Redis: the queue's registries, the counters and the last
facts the web and worker processes recorded (service/adapters/stats.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from rq import Queue, Worker

from service.adapters.authfault import read_refusal
from service.adapters.eviction import read_policy
from service.adapters.queue import make_queue
from service.adapters.stats import Sample, Stats
from service.adapters.unknownfields import read_unknown_fields
from service.config.errors import InvalidRulesError
from service.core.rules import load_rules_path
from service.core.status import QueueState, RulesState, Status


def collect_status(
    connection: redis.Redis,
    *,
    rules_path: str | os.PathLike[str],
    clock: Callable[[], float] = time.time,
) -> Status:
    """The service's state now, as every process has recorded it in Redis."""
    stats = Stats(connection, clock=clock)
    samples = stats.samples()
    times = stats.last_times()
    return Status(
        queue=queue_state(make_queue(connection)),
        rules=rules_state(rules_path),
        last_webhook_at=times.get("last_webhook_at"),
        last_close_call_at=times.get("last_close_call_at"),
        rate_limit=stats.last_rate_limit(),
        close_requests=_total(samples, "close_requests_total"),
        close_rate_limited=_total(samples, "close_rate_limited_total"),
        close_retries=_total(samples, "close_retries_total"),
        events=_by_label(samples, "events_total", "outcome"),
        webhooks=_by_label(samples, "webhooks_total", "outcome"),
        catch_up=stats.last_catch_up(),
        redis_policy=read_policy(connection),
        key_refused=read_refusal(connection),
        unknown_fields=read_unknown_fields(connection),
    )


def queue_state(queue: Queue) -> QueueState:
    """Counts of the queue and its registries, and when its head was queued."""
    return QueueState(
        waiting=queue.count,
        in_progress=queue.started_job_registry.count,
        scheduled=queue.scheduled_job_registry.count,
        failed=queue.failed_job_registry.count,
        oldest_waiting_at=_oldest_waiting_at(queue),
        workers=Worker.count(queue=queue),
    )


def _oldest_waiting_at(queue: Queue) -> float | None:
    for job_id in queue.get_job_ids(0, 1):
        job = queue.fetch_job(job_id)
        if job is not None and job.enqueued_at is not None:
            return _timestamp(job.enqueued_at)
    return None


def _timestamp(moment: datetime) -> float:
    # RQ has written both naive and aware UTC times across 2.x releases.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def rules_state(path: str | os.PathLike[str]) -> RulesState:
    """The rules at `path` as a process starting now would load them."""
    try:
        ruleset = load_rules_path(path)
    except InvalidRulesError as error:
        problems = tuple(str(p) for p in error.problems)
        return RulesState(os.fspath(path), None, None, problems)
    return RulesState(os.fspath(path), len(ruleset.rules), ruleset.digest)


def _total(samples: list[Sample], name: str) -> int:
    return int(sum(s.value for s in samples if s.name == name))


def _by_label(samples: list[Sample], name: str, label: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sample in samples:
        value = dict(sample.labels).get(label)
        if sample.name == name and value is not None:
            counts[value] = counts.get(value, 0) + int(sample.value)
    return counts


def workers_on(queue: Queue, hostname: str) -> int:
    """Live workers of the queue that run on `hostname` (RQ records each worker's host)."""
    return sum(1 for worker in Worker.all(queue=queue) if worker.hostname == hostname)
