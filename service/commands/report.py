"""`dealkeeper report [PATH] [--json|--csv]`: the deal-hygiene report, now, from Close.

For every enabled sweep rule (the deals it would change) and every check of the rules'
`report:` sections (the deals its find and if hold for): how many deals fail it, with the
value at stake, per owner and per pipeline. Deals are listed and judged as a sweep run
does (service/processing/hygiene.py), reading only: nothing is queued or written.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from service.adapters.close import CloseClient
from service.adapters.metadata import fetch_metadata
from service.adapters.queue import connect
from service.adapters.ratelimit import SharedRateLimiter
from service.commands.rules import CLI_MAX_INLINE_WAIT_SEC, close_client, load_or_exit, rules_path
from service.commands.sweep import list_every_page
from service.config.errors import DealkeeperError
from service.config.settings import Settings
from service.core import hygieneout
from service.processing.hygiene import compute
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.run import Sweeper


@click.command("report")
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="Print one CSV row per check, owner and pipeline."
)
def report(path: str | None, as_json: bool, as_csv: bool) -> None:
    """The deal-hygiene report: for every sweep rule and every check of a report: section
    in PATH (a rules file or folder; default DEALKEEPER_RULES), the deals that fail it now,
    with their value, per owner and per pipeline. Reads Close, writes nothing.
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    ruleset = load_or_exit(rules_path(path))
    settings = Settings.from_env()
    moment = datetime.now(UTC).replace(microsecond=0)
    with _client(settings) as client:
        try:
            metadata = fetch_metadata(client)
            counts = compute(
                ruleset, client=client, metadata=metadata, moment=moment, listing=_listing
            )
        except DealkeeperError as error:
            raise click.ClickException(_unreadable(error)) from error
    if as_json:
        click.echo(hygieneout.as_json(counts, computed_at=moment, digest=ruleset.digest))
    elif as_csv:
        click.echo(hygieneout.as_csv(counts), nl=False)
    else:
        for line in hygieneout.as_table(counts, computed_at=moment):
            click.echo(line)


def _client(settings: Settings) -> CloseClient:
    """A client for CLOSE_API_KEY; with REDIS_URL set it keeps the workers' shared pace, so
    the report's listing never pushes a worker's write into a 429."""
    throttle = None
    if settings.close_api_key and settings.redis_client_url:
        throttle = SharedRateLimiter(
            connect(settings.redis_client_url, role="cli"),
            rate_per_sec=settings.tuning.close_rate_limit_per_sec,
            max_inline_wait_sec=CLI_MAX_INLINE_WAIT_SEC,
        )
    return close_client(settings, needed_for="report", throttle=throttle)


def _listing(sweeper: Sweeper) -> Progress:
    """Every page, as `dealkeeper sweep --dry-run` lists them (a bar on a terminal only)."""
    return list_every_page(sweeper, stream=sys.stderr)


def _unreadable(error: DealkeeperError) -> str:
    return (
        f"cannot read Close's opportunities for the report: {error}. Check CLOSE_API_KEY and"
        " CLOSE_API_URL (`dealkeeper doctor` tells which is wrong), then run it again"
    )


__all__ = ["report"]
