"""The `dealkeeper` command."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import requests

from service import __version__
from service.commands import runner
from service.commands.catchup import catch_up_command
from service.commands.doctor import doctor
from service.commands.failed import failed
from service.commands.history import history
from service.commands.ops import status, subscribe, subscription
from service.commands.replay import backtest, explain
from service.commands.report import report
from service.commands.rules import schema, validate
from service.commands.ruletests import test_rules
from service.commands.sweep import sweep_command
from service.config import defaults
from service.config.errors import DealkeeperError
from service.config.settings import DEFAULT_PORT, Settings
from service.core.rules import load_rules_path
from service.intake import signatures
from service.observability import logs
from service.processing import pool


class _Group(click.Group):
    """Turns our own errors into a clean message and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DealkeeperError as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dealkeeper")
def cli() -> None:
    """Keep Close CRM deals tidy: signed webhooks in, YAML rules, one API call out.

    Configuration comes from the environment: CLOSE_API_KEY, CLOSE_API_URL,
    CLOSE_WEBHOOK_SECRET, CLOSE_WEBHOOK_TOLERANCE, REDIS_URL, DEALKEEPER_RULES, PORT,
    LOG_LEVEL (see docs/configuration.md).
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--web-workers", default=2, show_default=True, help="gunicorn worker processes.")
def run(host: str, web_workers: int) -> None:
    """Run web, worker and (without REDIS_URL) an embedded Redis, until Ctrl-C.

    Without CLOSE_API_KEY nothing is sent to Close: planned updates are logged (dry-run).
    """
    settings = Settings.from_env()
    load_rules_path(settings.rules_path)  # refuse to start on broken rules, with their problems
    raise SystemExit(runner.run(settings, host=host, web_workers=web_workers))


@cli.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option(
    "--name", default=None, help="Worker name (default: RQ's); with --processes, -1, -2... added."
)
@click.option(
    "--processes",
    type=click.IntRange(1, defaults.WORKER_PROCESSES_MAX),
    default=None,
    help="Worker processes to run and keep running [default: DEALKEEPER_WORKER_PROCESSES or 1]."
    " Each handles one event at a time, mostly waiting on Close.",
)
def worker(burst: bool, name: str | None, processes: int | None) -> None:
    """Process queued events (the Procfile's `worker:`)."""
    settings = Settings.from_env()
    count = processes or settings.tuning.worker_processes
    if count > 1:
        logs.configure_for(settings)
        raise SystemExit(pool.run_pool(count, burst=burst, name=name))
    from service.processing.worker import (
        run_worker,  # keeps `dealkeeper validate` free of RQ start-up
    )

    run_worker(settings, burst=burst, name=name)


@cli.command("send-test-event")
@click.option("--url", default=None, help="Webhook URL (default: this machine's, on PORT).")
@click.option("--opportunity", default="oppo_test", show_default=True)
def send_test_event(url: str | None, opportunity: str) -> None:
    """Sign and send a sample 'moved to Won' event, as Close would."""
    key = _test_event_key()
    target = url or f"http://127.0.0.1:{os.environ.get('PORT', DEFAULT_PORT)}/webhooks/close"
    body = json.dumps(sample_event(opportunity, now=time.time())).encode()
    headers = signatures.signed_headers(body, key=key, timestamp=int(time.time()))
    answer = requests.post(
        target, data=body, headers={**headers, "content-type": "application/json"}, timeout=10
    )
    click.echo(f"{answer.status_code} {answer.text.strip()}")
    if answer.status_code >= 300:
        raise SystemExit(1)


def _test_event_key() -> bytes:
    settings = Settings.from_env()
    if settings.webhook_secrets:
        return settings.webhook_secrets[0]
    stored = Path(defaults.LOCAL_DATA_DIR) / runner.DEV_SECRET_FILE
    if stored.exists():
        return bytes.fromhex(stored.read_text().strip())
    raise click.ClickException(
        "no key to sign with: set CLOSE_WEBHOOK_SECRET, or start `dealkeeper run` here first"
    )


def sample_event(opportunity_id: str, *, now: float) -> dict[str, Any]:
    """A webhook body for an opportunity that just moved from Active to Won."""
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    state = {
        "id": opportunity_id,
        "status_id": "stat_won",
        "status_label": "Won",
        "status_type": "won",
        "confidence": 70,
        "value": 1500000,
        "value_period": "one_time",
        "date_won": None,
        "lead_id": "lead_test",
    }
    return {
        "subscription_id": "whsub_test",
        "event": {
            "id": f"ev_test_{int(now * 1000)}",
            "object_type": "opportunity",
            "object_id": opportunity_id,
            "action": "updated",
            "date_created": moment,
            "date_updated": moment,
            "lead_id": "lead_test",
            "api_key_id": None,
            "user_id": "user_test",
            "changed_fields": ["date_updated", "status_id", "status_label", "status_type"],
            "previous_data": {
                "status_id": "stat_active",
                "status_label": "Active",
                "status_type": "active",
            },
            "data": state,
        },
    }


cli.add_command(validate)
cli.add_command(test_rules)
cli.add_command(schema)
cli.add_command(explain)
cli.add_command(backtest)
cli.add_command(history)
cli.add_command(failed)
cli.add_command(catch_up_command)
cli.add_command(subscribe)
cli.add_command(subscription)
cli.add_command(doctor)
cli.add_command(status)
cli.add_command(sweep_command)
cli.add_command(report)


def main() -> None:
    """Console script entry point."""
    cli(prog_name="dealkeeper")
