"""Running dealkeeper: `subscribe` and `subscription` connect it to Close, `status` shows how
it is doing.

    dealkeeper subscribe --url https://HOST/webhooks/close [--exclude-own-changes]
    dealkeeper subscription [--url URL] [--resume] [--json]
    dealkeeper status [--json]
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import redis

from service.adapters import subscriptions as subs
from service.adapters.close import CloseClient
from service.adapters.ownwrites import OwnWrites
from service.adapters.queue import connect, make_queue, redis_url
from service.adapters.snapshot import collect_status, workers_on
from service.config.errors import ConfigurationError
from service.config.settings import Settings
from service.core.status import render_table, to_json

WEBHOOK_PATH = "/webhooks/close"


@click.command()
@click.option("--url", required=True, help=f"dealkeeper's public HTTPS address + {WEBHOOK_PATH}.")
@click.option(
    "--exclude-own-changes",
    is_flag=True,
    help="Ask Close not to send the events dealkeeper's own API key causes.",
)
def subscribe(url: str, exclude_own_changes: bool) -> None:
    """Create (or bring up to date) Close's webhook subscription for opportunity events.

    Safe to run again: the subscription for URL is found and updated, never duplicated.
    """
    settings = Settings.from_env()
    _warn_about_url(url)
    extra_filter = _own_changes_filter(settings) if exclude_own_changes else None
    with _close(settings) as close:
        done = subs.ensure_subscription(
            close, url=url, events=subs.wanted_events(extra_filter=extra_filter)
        )
    _report_subscribed(done, url=url)


def _warn_about_url(url: str) -> None:
    if not url.startswith("https://"):
        click.echo(f"warning: {url} is not https://; Close should reach dealkeeper over TLS")
    if not url.rstrip("/").endswith(WEBHOOK_PATH):
        click.echo(f"warning: dealkeeper receives webhooks on {WEBHOOK_PATH}; {url} is elsewhere")


def _own_changes_filter(settings: Settings) -> dict[str, Any] | None:
    try:
        connection = connect(redis_url(settings), role="cli")
        key_ids = OwnWrites(connection).known_key_ids()
    except (redis.RedisError, ConfigurationError) as error:
        raise click.ClickException(
            f"--exclude-own-changes reads dealkeeper's own API key id from Redis, which failed "
            f"({error}); set REDIS_URL to the service's Redis, or leave the option out"
        ) from error
    found = subs.own_changes_filter(key_ids)
    if found is None:
        click.echo(
            "note: dealkeeper has not learned its own API key's id yet (it does from the first "
            "event one of its writes causes), so own changes are not filtered out; they are "
            "still recognised and ignored. Run this again after its first write to add the filter."
        )
    return found


@contextmanager
def _close(settings: Settings) -> Iterator[CloseClient]:
    if not settings.close_api_key:
        raise click.ClickException(
            "CLOSE_API_KEY is not set: set it to an API key of a Close admin (Settings > "
            "Developer > API Keys), then run this again"
        )
    with CloseClient.from_settings(settings) as client:
        yield client


def _report_subscribed(done: subs.Subscribed, *, url: str) -> None:
    found = done.subscription
    events = _events_text(found.get("events") or [])
    verb = {"created": "created", "updated": "updated", "unchanged": "kept"}[done.outcome]
    click.echo(f"{verb} webhook subscription {found.get('id')} for {url}")
    click.echo(f"  events: {events}")
    if done.outcome == "created":
        _show_signature_key(found.get("signature_key"))
    else:
        click.echo("  its signature_key is unchanged: keep CLOSE_WEBHOOK_SECRET as it is")
    if found.get("status") == "paused":
        click.echo(
            f"  it is PAUSED ({found.get('pause_reason') or 'no reason given'}): "
            f"resume it with `dealkeeper subscription --url {url} --resume`"
        )
    for other in done.duplicates:
        click.echo(f"warning: {other} also delivers to {url}; delete it in Close")


def _show_signature_key(key: Any) -> None:
    if not key:
        click.echo("  Close returned no signature_key; see the subscription in Close's settings")
        return
    click.echo("signature_key (Close shows it only this once; it is a secret):")
    click.echo(f"  {key}")
    click.echo("Store it as CLOSE_WEBHOOK_SECRET where dealkeeper runs, e.g. on Heroku:")
    click.echo("  heroku config:set CLOSE_WEBHOOK_SECRET=<the key above>")
    click.echo("Replacing a key? Keep both, comma-separated (<old>,<new>), until the old is gone.")


def _events_text(events: list[dict[str, Any]]) -> str:
    names = ", ".join(f"{e.get('object_type')}.{e.get('action')}" for e in events)
    if any(e.get("extra_filter") for e in events):
        names += " (filtered: " + json.dumps(events[0].get("extra_filter")) + ")"
    return names


@click.command()
@click.option(
    "--url", default=None, help="The subscription's URL (default: every one for opportunities)."
)
@click.option("--resume", is_flag=True, help="Re-activate the subscription if Close paused it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (no signature_key).")
def subscription(url: str | None, resume: bool, as_json: bool) -> None:
    """Show the webhook subscription's status and Close's delivery health; --resume a paused one."""
    settings = Settings.from_env()
    with _close(settings) as close:
        found = _subscriptions_for(close, url)
        if resume:
            if len(found) > 1:
                raise click.ClickException(
                    f"{len(found)} subscriptions deliver opportunity events; say which to "
                    "resume with --url"
                )
            found = [_resume(close, found[0])]
    shown = [subs.without_secret(s) for s in found]
    if as_json:
        click.echo(json.dumps(shown, indent=2, sort_keys=True))
        return
    click.echo("\n\n".join(describe_subscription(s) for s in shown))


def _subscriptions_for(close: CloseClient, url: str | None) -> list[dict[str, Any]]:
    every = subs.list_subscriptions(close)
    found = subs.for_url(every, url) if url else subs.for_opportunities(every)
    if not found:
        where = f"for {url}" if url else "for opportunity events"
        raise click.ClickException(
            f"Close has no webhook subscription {where}; create one with "
            f"`dealkeeper subscribe --url https://<your host>{WEBHOOK_PATH}`"
        )
    return found


def _resume(close: CloseClient, found: dict[str, Any]) -> dict[str, Any]:
    if found.get("status") != "paused":
        click.echo(f"{found.get('id')} is {found.get('status')}; nothing to resume")
        return found
    resumed = subs.resume(close, found["id"])
    click.echo(
        f"resumed {found['id']} (paused: {found.get('pause_reason') or 'no reason given'}). "
        "Close dropped what it had queued when it paused it: bring missed events back with "
        "`dealkeeper catch-up --since <when it paused>`"
    )
    return resumed


def describe_subscription(found: dict[str, Any]) -> str:
    """A subscription and its delivery health as aligned lines."""
    state = str(found.get("status"))
    if found.get("pause_reason"):
        state += f" (pause_reason: {found['pause_reason']})"
    counters = found.get("counters") or {}
    rows = [
        ("url", found.get("url")),
        ("status", state),
        ("events", _events_text(found.get("events") or [])),
        ("health", found.get("health_status") or "not reported"),
        ("latest error", found.get("latest_error") or "none"),
        ("failing now", f"{found.get('recent_consecutive_fail_buckets_cnt') or 0} recent buckets"),
        ("counters", " ".join(f"{k}={v}" for k, v in sorted(counters.items())) or "none"),
        ("verify_ssl", found.get("verify_ssl")),
    ]
    lines = [f"subscription {found.get('id')}"] + [f"  {k:<14}{v}" for k, v in rows]
    errors = (found.get("history") or {}).get("errors") or []
    if errors:
        lines.append("  recent failures")
        lines += [f"    {_failure_text(e)}" for e in errors[:10]]
    return "\n".join(lines)


def _failure_text(error: dict[str, Any]) -> str:
    return (
        f"{error.get('datetime')}  {error.get('event_id')}  "
        f"{error.get('response_status_code') or '-'}  {error.get('error')} "
        f"(attempt {error.get('attempt_number')})"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--check-worker",
    is_flag=True,
    help="Only check that a worker on this host is alive; exit 1 if not (container healthcheck).",
)
def status(as_json: bool, check_worker: bool) -> None:
    """Queue, workers, rules, last webhook and Close call, Close's rate-limit headroom,
    Redis's maxmemory-policy (DANGER when it may evict queued events)."""
    settings = Settings.from_env()
    connection = connect(redis_url(settings), role="cli")
    try:
        if check_worker:
            _check_worker(connection)
            return
        found = collect_status(connection, rules_path=settings.rules_path)
    except redis.RedisError as error:
        raise click.ClickException(
            f"Redis did not answer ({error}); check REDIS_URL (and REDIS_SSL_CERT_REQS for "
            "Heroku Redis)"
        ) from error
    now = time.time()
    if as_json:
        click.echo(json.dumps(to_json(found, now=now), indent=2, sort_keys=True))
    else:
        click.echo(render_table(found, now=now))


def _check_worker(connection: redis.Redis) -> None:
    host = socket.gethostname()
    alive = workers_on(make_queue(connection), host)
    if not alive:
        raise click.ClickException(f"no live dealkeeper worker on {host}")
    click.echo(f"ok: {alive} worker(s) alive on {host}")
