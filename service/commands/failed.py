"""`dealkeeper failed`: the parking lot of events that could not be applied.

A permanent failure (Close refused the update, a suspected loop) or a transient one that
outlived every retry leaves the event's job in RQ's failed registry, with Close's answer
(the traceback trimmed to its last frame; at most defaults.PARKED_MAX events are kept,
service/adapters/parked.py).
These commands list, show, retry and purge them, like `rq requeue`, with counts and a
non-zero exit when something could not be done. What they do is in adapters/parked.py,
which the console's parked page uses too.
"""

from __future__ import annotations

import json

import click
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from service.adapters.parked import describe, parked_jobs, purge_parked, reason_of, requeue_many
from service.adapters.queue import connect, make_queue, redis_url
from service.config.settings import Settings


def open_queue() -> Queue:
    return make_queue(connect(redis_url(Settings.from_env()), role="cli"))


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
    done = requeue_many(open_queue(), None if retry_all else list(job_ids))
    click.echo(f"requeued {len(done.requeued)}, could not requeue {len(done.missing)}")
    for job_id in done.missing:
        click.echo(f"  {job_id}: not in the failed registry", err=True)
    if done.missing:
        raise SystemExit(1)


@failed.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool) -> None:
    """Delete every parked event for good."""
    queue = open_queue()
    ids = queue.failed_job_registry.get_job_ids()
    if ids and not yes:
        click.confirm(f"delete {len(ids)} parked event(s) for good?", abort=True)
    click.echo(f"purged {purge_parked(queue, ids)}")
