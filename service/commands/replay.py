"""`dealkeeper explain` and `dealkeeper backtest`: rules replayed over real events, read-only.

explain takes one event (a JSON file, an event id from Close's event log, or an
opportunity's current state) and tells, rule by rule and condition by condition, what
happens and why. backtest replays up to 30 days of the event log. Neither ever writes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar

import click

from service.adapters.close import JSONAPI, CloseClient
from service.adapters.eventlog import EVENT_LOG_RETENTION, get_event, read_events
from service.adapters.metadata import fetch_metadata
from service.authoring.backtest import format_backtest, format_diff, replay
from service.authoring.explain import (
    PayloadMissingError,
    describe_rules,
    event_from_json,
    event_from_opportunity,
    explained,
)
from service.authoring.naming import field_names
from service.commands.rules import close_client, load_or_exit, metadata_from_close, rules_path
from service.config.errors import CloseNotFoundError
from service.config.settings import Settings
from service.core.events import EnvelopeError, Event, event_from_dict
from service.core.rules.evaluation.dates import format_duration, parse_duration

T = TypeVar("T")


@click.command()
@click.argument("event_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--event-id", help="An event of Close's event log (ev_...), read from Close.")
@click.option("--opportunity", help="An opportunity (oppo_...): its current state, as an update.")
@click.option("--rules", "rules_option", help="Rules file or folder (default: DEALKEEPER_RULES).")
def explain(
    event_file: str | None, event_id: str | None, opportunity: str | None, rules_option: str | None
) -> None:
    """Show how the rules judge one event: every rule, every condition, the update.

    Give EVENT_FILE (a webhook body or an event as JSON), --event-id or --opportunity.
    Close's statuses and custom fields are used when CLOSE_API_KEY is set. Never writes.
    """
    if sum(x is not None for x in (event_file, event_id, opportunity)) != 1:
        raise click.UsageError("give exactly one of EVENT_FILE, --event-id and --opportunity")
    target = rules_path(rules_option)
    ruleset = load_or_exit(target)
    settings = Settings.from_env()
    event = _event(settings, event_file=event_file, event_id=event_id, opportunity=opportunity)
    metadata = metadata_from_close(settings)
    try:
        lines = explained(
            ruleset, event, metadata=metadata, rules_path=target, names=field_names(metadata)
        )
    except PayloadMissingError as error:
        raise click.ClickException(str(error)) from None
    for line in lines:
        click.echo(line)


def _event(
    settings: Settings, *, event_file: str | None, event_id: str | None, opportunity: str | None
) -> Event:
    if event_file is not None:
        try:
            return event_from_json(Path(event_file).read_text(encoding="utf-8"))
        except (ValueError, EnvelopeError) as error:
            message = f"not a Close event: {error}"
            raise click.BadParameter(message, param_hint="EVENT_FILE") from None
    with close_client(settings, needed_for="--event-id and --opportunity") as client:
        try:
            if event_id is not None:
                return event_from_dict(get_event(client, event_id))
            assert opportunity is not None
            return event_from_opportunity(client.get_opportunity(opportunity), now=_now())
        except CloseNotFoundError:
            what = f"event {event_id}" if event_id else f"opportunity {opportunity}"
            kept = " (the event log keeps 30 days)" if event_id else ""
            raise click.ClickException(f"Close has no {what}{kept}") from None


def _now() -> datetime:
    return datetime.now(UTC)


@click.command()
@click.option(
    "--since", default="7d", show_default=True, help="How far back: 12h, 7d, 2w; at most 30d."
)
@click.option("--rules", "rules_option", help="Rules file or folder (default: DEALKEEPER_RULES).")
@click.option("--diff", "other", help="Other rules to compare with: what would the change do?")
def backtest(since: str, rules_option: str | None, other: str | None) -> None:
    """Replay Close's event log through the rules, offline, and count what they would do.

    Prints, per rule, the events of its triggers, how often it fired and how many updates
    it would have written, with sample changes. With --diff OTHER_RULES, also what the
    rules would write that OTHER_RULES does not (+) and the other way round (-). Never writes.
    """
    window = _window(since)
    target = rules_path(rules_option)
    ruleset = load_or_exit(target)
    baseline = load_or_exit(other) if other is not None else None
    settings = Settings.from_env()
    with close_client(settings, needed_for="backtest") as client:
        metadata = fetch_metadata(client)
        start = _now() - window
        raw = _read_log(client, since=start)
    result, diff = replay(
        raw,
        ruleset,
        metadata=metadata,
        baseline=baseline,
        each=lambda events: _progress(events, label="replaying events", stream=sys.stderr),
    )
    title = f"backtest of {describe_rules(target, ruleset)} since {start:%Y-%m-%d %H:%M} UTC"
    names = field_names(metadata)
    for line in format_backtest(result, title=title, names=names):
        click.echo(line)
    if baseline is not None and other is not None:
        click.echo("")
        for line in format_diff(diff, new=target, old=other, names=names):
            click.echo(line)


def _window(since: str) -> timedelta:
    seconds = parse_duration(since.strip())
    if seconds is None or seconds <= 0:
        raise click.BadParameter("use a duration such as 12h, 7d or 2w", param_hint="--since")
    window = timedelta(seconds=seconds)
    if window > EVENT_LOG_RETENTION:
        longest = format_duration(int(EVENT_LOG_RETENTION.total_seconds()))
        raise click.BadParameter(
            f"Close's event log keeps {longest} of events; use --since {longest} or less",
            param_hint="--since",
        )
    return window


def _read_log(client: CloseClient, *, since: datetime) -> list[dict[str, Any]]:
    with _PageCounter(client, stream=sys.stderr) as reader:
        return read_events(reader, since=since)


class _PageCounter:
    """Reads through `client`, counting the events read on a terminal (how many pages the log
    holds is unknown beforehand, so a count stands in for a bar)."""

    def __init__(self, client: JSONAPI, *, stream: IO[str]) -> None:
        self._client = client
        self._stream = stream
        self._shown = stream.isatty()
        self.count = 0

    def __enter__(self) -> _PageCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The client's answer; the count moves by the number of events on the page."""
        page = self._client.request_json(method, path, params=params, body=body)
        self.count += len(page.get("data") or ())
        if self._shown:
            self._stream.write(f"\rreading the event log: {self.count} events")
            self._stream.flush()
        return page


def _progress(items: list[T], *, label: str, stream: TextIO) -> Iterator[T]:
    """The items, with a progress bar on `stream` when it is a terminal."""
    if not stream.isatty():
        yield from items
        return
    bar: Iterable[T]
    with click.progressbar(items, label=label, file=stream) as bar:
        yield from bar
