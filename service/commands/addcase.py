"""`dealkeeper test --add-case EVENT_ID`: a real event appended to a rule test file.

The event comes from Close's event log (`GET /event/{id}/`), or, when the log no longer has
it or shows it without its deal (a non-admin key, after an hour), from a job dealkeeper
still holds in Redis (queued, waiting for a retry, or parked). Personal data is replaced
(service/authoring/anonymize.py), the expectation is what today's rules do (or --expect),
and the case is appended as text and run before the command says it is done.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click
import redis

from service.adapters.close import CloseClient
from service.adapters.keptevents import KeptEvents
from service.adapters.queue import connect, redis_url
from service.authoring.newcase import (
    AddCaseError,
    NewCase,
    appended,
    check_case,
    default_test_file,
    new_case,
    parse_expect,
)
from service.commands.rules import close_client
from service.config.errors import ConfigurationError
from service.config.settings import Settings
from service.core.events import is_close_id
from service.core.rules import RuleSet, discover
from service.processing import eventsource
from service.processing.eventsource import Found


def add_case(
    path: str,
    ruleset: RuleSet,
    event_id: str,
    *,
    expect: str | None,
    to: str | None,
    name: str | None,
) -> None:
    """Fetch, scrub, append, run; exit 1 (with the reason) when the case is not added or
    fails. Never writes to Close."""
    if not is_close_id(event_id):
        raise click.BadParameter("give an event id such as ev_...", param_hint="--add-case")
    try:
        wanted = parse_expect(expect) if expect is not None else None
        found = find_event(Settings.from_env(), event_id)
        case = new_case(ruleset, found.raw, metadata=found.metadata, name=name, expect=wanted)
        target = to or default_test_file(path, ruleset, case)
        failures = _write(case, target, ruleset, source=found.source)
    except AddCaseError as error:
        raise click.ClickException(str(error)) from None
    _report(case, target, path, failures)


def find_event(settings: Settings, event_id: str) -> Found:
    """The event from Close's log, else from dealkeeper's Redis; a clear error when neither
    has it with its deal."""
    connection = _connection(settings)
    try:
        if settings.close_api_key:
            with close_client(settings, needed_for="--add-case") as client:
                return _find(event_id, client=client, connection=connection)
        return _find(event_id, client=None, connection=connection)
    finally:
        if connection is not None:
            connection.close()


def _find(event_id: str, *, client: CloseClient | None, connection: redis.Redis | None) -> Found:
    def noted(error: redis.RedisError) -> None:
        click.echo(f"note: Redis did not answer ({error}); only Close's log was read", err=True)

    kept = KeptEvents(connection, on_error=noted) if connection is not None else None
    try:
        return eventsource.find_event(event_id, client=client, kept=kept)
    except eventsource.EventNotFoundError as error:
        raise AddCaseError(str(error)) from None


def _connection(settings: Settings) -> redis.Redis | None:
    try:
        url = redis_url(settings)
    except ConfigurationError:
        return None  # no REDIS_URL and no local `dealkeeper run`: nothing kept here
    return connect(url, role="cli")


def _write(case: NewCase, target: str, ruleset: RuleSet, *, source: str) -> list[str]:
    """Append the case to `target` once it loads back and runs; its failures (only an
    --expect other than today's rules can fail)."""
    file = Path(target)
    existing = file.read_text(encoding="utf-8") if file.is_file() else None
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    note = f"added by `dealkeeper test --add-case` on {today} from {source}"
    text = appended(existing, case, file=target, note=note)
    failures = check_case(text, target, ruleset, case.name)
    with file.open("a", encoding="utf-8") as out:  # append: what is there stays as it is
        out.write(text[len(existing or "") :])
    return failures


def _report(case: NewCase, target: str, path: str, failures: list[str]) -> None:
    shown = ", ".join(case.plan.fired) or "no rule"
    click.echo(f"added '{case.name}' to {target}: {shown} fired")
    if case.replaced:
        click.echo(f"personal data replaced by placeholders in: {', '.join(sorted(case.replaced))}")
    if case.scrub_changed_plan:
        click.echo(
            "note: the rules read text that was replaced, and do otherwise with the real text; "
            "the case pins what they do with the placeholders. Edit its values if it matters"
        )
    if os.path.abspath(target) not in {os.path.abspath(t) for t in discover(path)[1]}:
        click.echo(f"note: `dealkeeper test {path}` does not run {target}; run it by its name")
    if failures:
        click.echo("FAIL with today's rules (the case pins what --expect says):")
        for failure in failures:
            click.echo(f"       {failure}")
        raise SystemExit(1)
    click.echo("ok: the case passes with today's rules")
