"""`dealkeeper catch-up`: queue the events of Close's event log that webhooks did not bring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from service.adapters.close import CloseClient
from service.adapters.eventlog import EVENT_LOG_RETENTION
from service.adapters.queue import connect, make_queue, redis_url
from service.adapters.stats import Stats
from service.config.settings import Settings
from service.core.rules.evaluation.dates import parse_duration
from service.processing.catchup import MAX_EVENT_IDS_SHOWN, NO_PAYLOAD_ADVICE, catch_up, record_run

# A command can afford to wait out Close's rate limit instead of failing.
CLI_MAX_INLINE_WAIT_SEC = 60.0


@click.command("catch-up")
@click.option("--since", required=True, help="How far back to read: 30m, 2h, 7d (at most 30d).")
def catch_up_command(since: str) -> None:
    """Read Close's event log since then and queue every event not queued before.

    Events delivered by webhooks as well are recognised and not processed twice. Close keeps
    30 days of events; a key without admin rights sees their data only for an hour, and
    events read without their data are left for Close's webhook retries.
    """
    seconds = parse_duration(since)
    if seconds is None:
        raise click.BadParameter(f"expected a duration such as 30m, 2h or 7d, got {since!r}")
    if timedelta(seconds=seconds) > EVENT_LOG_RETENTION:
        raise click.BadParameter("Close's event log keeps 30 days; ask for 30d or less")
    settings = Settings.from_env()
    if not settings.close_api_key:
        raise click.ClickException("catch-up reads Close's event log: set CLOSE_API_KEY")
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    client = CloseClient.from_settings(settings, max_inline_wait_sec=CLI_MAX_INLINE_WAIT_SEC)
    connection = connect(redis_url(settings), role="cli")
    queue = make_queue(connection)
    result = catch_up(
        client, queue=queue, since=start, job_timeout_sec=settings.tuning.job_timeout_sec
    )
    record_run(Stats(connection), result, at=datetime.now(UTC).timestamp())
    click.echo(
        f"read {result.read} events since {start.isoformat(timespec='seconds')}: "
        f"queued {result.queued}, already queued before {result.duplicates}, "
        f"skipped {result.skipped}, no payload (non-admin key) {result.no_payload}"
    )
    if result.no_payload:
        shown = result.no_payload_ids[:MAX_EVENT_IDS_SHOWN]
        more = result.no_payload - len(shown)
        click.echo(
            f"{result.no_payload} events came without their data and were left for Close's "
            f"webhook retries: {NO_PAYLOAD_ADVICE}. Their ids: {' '.join(shown)}"
            + (f" and {more} more" if more else "")
        )
