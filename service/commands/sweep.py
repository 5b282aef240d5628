"""`dealkeeper sweep NAME [--dry-run]`: run one sweep rule now.

It lists the rule's opportunities here, with a progress bar on a terminal, and queues one
job per deal to change, on the same path as scheduled sweeps and webhooks: the workers
write, within the shared rate limit, retrying and parking, in order per deal, re-reading
each deal first. The command then waits for those jobs (up to --wait seconds) and prints
what they did. Doing the writes here instead would bypass exactly those guarantees.

--dry-run judges every listed deal in this process and prints the updates it would
queue; it queues and writes nothing and needs no Redis.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import click
import redis
from rq import Worker

from service.adapters.metadata import fetch_metadata
from service.adapters.queue import connect, enqueue_event, make_queue, redis_url
from service.adapters.sweepstore import SweepStore, job_results
from service.authoring.naming import field_names
from service.commands.rules import CLI_MAX_INLINE_WAIT_SEC, close_client, load_or_exit, rules_path
from service.config import defaults
from service.config.errors import CloseRateLimitedError
from service.config.settings import Settings
from service.core.events import Event
from service.core.rules import Metadata, Rule, RuleSet
from service.core.rules.suggest import closest
from service.processing import jobs
from service.processing.sweeps.dryrun import dry_run_sweeper
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.report import Outcomes, count_outcomes, format_summary, is_settled
from service.processing.sweeps.run import Sweeper, run_sweep
from service.processing.sweeps.schedule import LOCK_TTL_SEC

POLL_SEC = 0.25


@click.command("sweep")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Judge every deal here; queue and write nothing.")
@click.option("--rules", "rules_option", help="Rules file or folder (default: DEALKEEPER_RULES).")
@click.option(
    "--wait",
    "wait_sec",
    default=600,
    show_default=True,
    help="Seconds to wait for the queued jobs to finish (0: do not wait).",
)
def sweep_command(name: str, dry_run: bool, rules_option: str | None, wait_sec: int) -> None:
    """Run sweep rule NAME now: list its deals, queue a job per deal to change, wait for
    the workers, and print a summary with the first few planned updates."""
    ruleset = load_or_exit(rules_path(rules_option))
    rule = sweep_rule(ruleset, name=name)
    settings = Settings.from_env()
    moment = datetime.now(UTC).replace(microsecond=0)
    if not settings.close_api_key:
        raise click.UsageError("sweep needs CLOSE_API_KEY (a key of your Close organization)")
    if dry_run:
        with close_client(settings, needed_for="sweep") as client:
            metadata = fetch_metadata(client)
            sweeper = dry_run_sweeper(
                rule, ruleset=ruleset, moment=moment, client=client, metadata=metadata
            )
            progress = list_every_page(sweeper, stream=sys.stderr)
        _report(sweeper, progress, outcomes=None, metadata=metadata)
        return
    _run_for_real(rule, ruleset, settings=settings, moment=moment, wait_sec=wait_sec)


def sweep_rule(ruleset: RuleSet, *, name: str) -> Rule:
    """The sweep rule called `name`; a clear error naming the sweeps there are otherwise."""
    rule = ruleset.rule(name)
    if rule is not None and rule.sweep is not None:
        return rule
    sweeps = [r.name for r in ruleset.sweep_rules]
    known = ", ".join(sweeps) or "none (a sweep rule has schedule and find)"
    if rule is not None:
        raise click.ClickException(f"rule '{name}' runs on events, not as a sweep; sweeps: {known}")
    guess = closest(name, sweeps)
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise click.ClickException(f"no sweep rule named '{name}'{hint} (sweeps: {known})")


def _run_for_real(
    rule: Rule, ruleset: RuleSet, *, settings: Settings, moment: datetime, wait_sec: int
) -> None:
    connection = connect(redis_url(settings), role="cli")
    job_ids: list[str] = []
    with SweepStore(connection).lock(rule.name, ttl_sec=LOCK_TTL_SEC) as held:
        if held is None:
            busy = f"sweep {rule.name} is running now (a scheduled run); try again when it ends"
            raise click.ClickException(busy)
        # The workers' own client: the shared rate limit, and requests counted for `status`.
        context = jobs.build_context(settings, connection=connection)
        metadata = context.metadata.get()
        enqueue = _enqueuer(connection, settings, job_ids)
        sweeper = Sweeper(
            rule,
            ruleset=ruleset,
            moment=moment,
            client=context.close,
            metadata=metadata,
            enqueue=enqueue,
        )
        progress = list_every_page(sweeper, stream=sys.stderr, on_page=lambda _: held.refresh())
    outcomes = _await(connection, job_ids, wait_sec=wait_sec, stream=sys.stderr)
    _report(sweeper, progress, outcomes=outcomes, metadata=metadata)


def _enqueuer(
    connection: redis.Redis, settings: Settings, job_ids: list[str]
) -> Callable[[Event], bool]:
    queue = make_queue(connection)

    def enqueue(event: Event) -> bool:
        # The command reports how each job ended, so these keep their result (an event from
        # Close keeps none: its outcome is in the history).
        queued = enqueue_event(
            event,
            queue=queue,
            job_timeout_sec=settings.tuning.job_timeout_sec,
            result_ttl_sec=defaults.SWEEP_COMMAND_RESULT_TTL_SEC,
        )
        job_ids.append(queued.job_id)
        return not queued.duplicate

    return enqueue


def list_every_page(
    sweeper: Sweeper, *, stream: TextIO, on_page: Callable[[Progress], None] = lambda _: None
) -> Progress:
    """Every page, with a progress bar of the deals listed on a terminal; a long rate-limit
    wait is waited out here, where a person can afford it (a worker would come back later)."""
    reached = [Progress()]
    with _Bar("listing opportunities", stream=stream) as bar:

        def seen(progress: Progress) -> None:
            reached[0] = progress
            bar.show(progress.tally.listed, progress.total)
            on_page(progress)

        while not reached[0].done:
            try:
                run_sweep(sweeper, reached[0], on_page=seen)
            except CloseRateLimitedError as error:
                time.sleep(min(error.retry_after_sec, CLI_MAX_INLINE_WAIT_SEC))
    return reached[0]


def _await(
    connection: redis.Redis, job_ids: list[str], *, wait_sec: int, stream: TextIO
) -> Outcomes:
    """Wait (at most `wait_sec`) for the queued jobs to finish; how they ended."""
    outcomes = count_outcomes(job_results(connection, job_ids=job_ids), job_ids=job_ids)
    if not job_ids or wait_sec <= 0:
        return outcomes
    if Worker.count(connection=connection) == 0:
        click.echo(
            "no worker is running: the jobs wait in the queue for `dealkeeper worker`", err=True
        )
        return outcomes
    deadline = time.monotonic() + wait_sec
    with _Bar("applying updates", stream=stream) as bar:
        while not is_settled(outcomes) and time.monotonic() < deadline:
            time.sleep(POLL_SEC)
            outcomes = count_outcomes(job_results(connection, job_ids=job_ids), job_ids=job_ids)
            bar.show(len(job_ids) - outcomes.pending, len(job_ids))
    return outcomes


def _report(
    sweeper: Sweeper, progress: Progress, *, outcomes: Outcomes | None, metadata: Metadata | None
) -> None:
    lines = format_summary(
        sweeper.rule,
        moment=sweeper.moment,
        progress=progress,
        outcomes=outcomes,
        filters=sweeper.filters,
        names=field_names(metadata),
    )
    for line in lines:
        click.echo(line)


class _Bar:
    """A progress bar on a terminal (nothing elsewhere); its length known once Close says."""

    def __init__(self, label: str, *, stream: TextIO) -> None:
        self._label, self._stream = label, stream
        self._bar: Any = None
        self._done = 0

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.render_finish()

    def show(self, done: int, total: int | None) -> None:
        """Move the bar to `done` of `total`."""
        if not self._stream.isatty() or total is None:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self._label, file=self._stream)
        self._bar.update(done - self._done)
        self._done = done
