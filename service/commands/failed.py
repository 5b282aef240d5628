"""`dealkeeper failed`: the parking lot of events that could not be applied.

A permanent failure (Close refused the update, a suspected loop) or a transient one that
outlived every retry leaves the event's job in RQ's failed registry, with Close's answer
(the traceback trimmed to its last frame; at most defaults.PARKED_MAX events are kept,
service/adapters/parked.py).
These commands list, show, retry and purge them, like `rq requeue`, with counts and a
non-zero exit when something could not be done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import click
import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from service.adapters.loopguard import PREFIX as LOOP_PREFIX
from service.adapters.parked import reason_of
from service.adapters.queue import connect, make_queue, redis_url, results_key
from service.config import defaults
from service.config.settings import Settings


@dataclass(frozen=True)
class Parked:
    """One parked event, as the commands show it."""

    job_id: str
    event: str
    opportunity: str
    failed_at: str
    reason: str


def open_queue() -> Queue:
    return make_queue(connect(redis_url(Settings.from_env()), role="cli"))


def parked_jobs(queue: Queue) -> list[Parked]:
    """Every job in the failed registry, newest first."""
    ids = queue.failed_job_registry.get_job_ids()
    jobs = Job.fetch_many(ids, connection=queue.connection, serializer=JSONSerializer)
    found = [describe(job) for job in jobs if job is not None]
    return sorted(found, key=lambda p: p.failed_at, reverse=True)


def describe(job: Job) -> Parked:
    event = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
    ended = job.ended_at.replace(tzinfo=UTC) if job.ended_at else None
    return Parked(
        job_id=job.id,
        event=f"{event.get('object_type', '?')}.{event.get('action', '?')} {event.get('id', '')}",
        opportunity=str(event.get("object_id", "")),
        failed_at=ended.isoformat(timespec="seconds") if ended else "",
        reason=last_line(reason_of(job)),
    )


def last_line(text: str) -> str:
    """The exception line of a traceback: for Close errors, Close's own answer."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no reason recorded)"


@click.group()
def failed() -> None:
    """Events that could not be applied: list, show, retry, purge."""


@failed.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_parked(as_json: bool) -> None:
    """List parked events, newest first."""
    parked = parked_jobs(open_queue())
    for entry in parked:
        if as_json:
            click.echo(json.dumps(entry.__dict__))
        else:
            click.echo(f"{entry.job_id}  {entry.failed_at}  {entry.opportunity}  {entry.reason}")
    if not as_json:
        click.echo(f"{len(parked)} parked")


@failed.command("show")
@click.argument("job_id")
def show(job_id: str) -> None:
    """Everything about one parked event: the event, when, why (the frame that raised)."""
    queue = open_queue()
    try:
        job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    except NoSuchJobError:
        raise click.ClickException(
            f"no job {job_id}; `dealkeeper failed list` shows them"
        ) from None
    entry = describe(job)
    for key, value in entry.__dict__.items():
        click.echo(f"{key}: {value}")
    click.echo(f"attempts left: {job.retries_left}")
    click.echo("event data: " + json.dumps(job.args[0] if job.args else None, default=str))
    click.echo(reason_of(job).rstrip())


@failed.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every parked event.")
def retry(job_ids: tuple[str, ...], retry_all: bool) -> None:
    """Put parked events back on the queue (with their retries restored)."""
    if bool(job_ids) == retry_all:
        raise click.UsageError("give job ids or --all, not both and not neither")
    queue = open_queue()
    targets = queue.failed_job_registry.get_job_ids() if retry_all else list(job_ids)
    failures = [job_id for job_id in targets if not requeue(queue, job_id)]
    click.echo(f"requeued {len(targets) - len(failures)}, could not requeue {len(failures)}")
    for job_id in failures:
        click.echo(f"  {job_id}: not in the failed registry", err=True)
    if failures:
        raise SystemExit(1)


def requeue(queue: Queue, job_id: str) -> bool:
    """Back on the queue with a full set of retries, its loop counters cleared."""
    registry = queue.failed_job_registry
    if job_id not in registry.get_job_ids():
        return False
    try:
        job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
    except NoSuchJobError:
        registry.remove(job_id)
        return False
    job.retries_left = len(defaults.JOB_RETRY_INTERVALS_SEC)
    job.save()
    _clear_loop_counters(queue.connection, job)
    registry.requeue(job_id)
    return True


def _clear_loop_counters(connection: redis.Redis, job: Job) -> None:
    event: dict[str, Any] = job.args[0] if job.args else {}
    keys = list(connection.scan_iter(f"{LOOP_PREFIX}{event.get('object_id', '')}:*"))
    if keys:
        connection.delete(*keys)


@failed.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool) -> None:
    """Delete every parked event for good."""
    queue = open_queue()
    ids = queue.failed_job_registry.get_job_ids()
    if ids and not yes:
        click.confirm(f"delete {len(ids)} parked event(s) for good?", abort=True)
    for job_id in ids:
        queue.failed_job_registry.remove(job_id, delete_job=True)
        queue.connection.delete(results_key(job_id))  # RQ leaves its results stream
    click.echo(f"purged {len(ids)}")
