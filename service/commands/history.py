"""`dealkeeper history oppo_...`: what dealkeeper did with an opportunity's events, newest first.

Read from Redis (kept 30 days, at most 100 entries per opportunity): which rules fired and
why others did not, the update, Close's answer and when. The console's deal page shows the
same.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

import click

from service.adapters.history import HISTORY_PER_OPPORTUNITY, History, HistoryEntry
from service.adapters.queue import connect, redis_url
from service.config.settings import Settings


@click.command()
@click.argument("opportunity_id")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON list.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, HISTORY_PER_OPPORTUNITY),
    help="At most this many entries.",
)
def history(opportunity_id: str, as_json: bool, limit: int) -> None:
    """Show what dealkeeper did with OPPORTUNITY_ID's events, newest first (30 days)."""
    connection = connect(redis_url(Settings.from_env()), role="cli")
    try:
        entries = History(connection).for_opportunity(opportunity_id, limit=limit)
    finally:
        connection.close()
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], indent=2, default=str))
        return
    if not entries:
        click.echo(f"no history for {opportunity_id} in the last 30 days")
        return
    click.echo(f"history of {opportunity_id}, newest first ({len(entries)} entries):")
    for entry in entries:
        for line in format_entry(entry):
            click.echo(line)


def format_entry(entry: HistoryEntry) -> list[str]:
    """One entry as a few lines of text."""
    done = datetime.fromtimestamp(entry.processed_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"{done}  {entry.outcome:<16} {entry.event_type} {entry.event_id}"]
    lines.append(f"    event at {entry.event_time}")
    lines.append(f"    fired: {', '.join(entry.fired) or 'none'}")
    lines.extend(f"    not fired: {name}: {reason}" for name, reason in entry.not_fired.items())
    if entry.not_fired_more:
        lines.append(
            f"    {entry.not_fired_more} more did not fire: dealkeeper explain {entry.event_id}"
        )
    if entry.update:
        answer = f" -> Close {entry.close_status}" if entry.close_status is not None else ""
        lines.append(f"    update: {json.dumps(entry.update, sort_keys=True)}{answer}")
    if entry.detail:
        lines.append(f"    {entry.detail}")
    return lines
