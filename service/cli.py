"""The `dealkeeper` command."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import requests

from service import __version__, defaults, runner, signatures
from service.errors import DealkeeperError, InvalidRulesError
from service.rules import json_schema, load_rules_path, run_path
from service.settings import DEFAULT_PORT, DEFAULT_RULES_PATH, Settings


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
    LOG_LEVEL (see the README).
    """


def _rules_path(path: str | None) -> str:
    return path or os.environ.get("DEALKEEPER_RULES") or DEFAULT_RULES_PATH


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
@click.option("--name", default=None, help="Worker name (default: RQ's).")
def worker(burst: bool, name: str | None) -> None:
    """Process queued events (the Procfile's `worker:`)."""
    from service.worker import run_worker  # keeps `dealkeeper validate` free of RQ start-up

    run_worker(Settings.from_env(), burst=burst, name=name)


@cli.command()
@click.argument("path", required=False)
def validate(path: str | None) -> None:
    """Check rule files: exit 0 when all are good, else print file:line:column: message."""
    target = _rules_path(path)
    try:
        ruleset = load_rules_path(target)
    except InvalidRulesError as error:
        for problem in error.problems:
            click.echo(str(problem))
        raise SystemExit(1) from None
    click.echo(f"ok: {len(ruleset.rules)} rules in {len(ruleset.files)} files ({target})")


@cli.command("test")
@click.argument("path", required=False)
@click.option("-v", "--verbose", is_flag=True, help="Also list the cases that passed.")
def test_rules(path: str | None, verbose: bool) -> None:
    """Run the rule tests (*.test.yaml) beside the rules, offline."""
    target = _rules_path(path)
    try:
        report = run_path(target)
    except InvalidRulesError as error:
        for problem in error.problems:
            click.echo(str(problem))
        raise SystemExit(1) from None
    for result in report.results:
        if verbose or not result.ok:
            mark = "ok  " if result.ok else "FAIL"
            click.echo(f"{mark} {result.case.position}: {result.case.name}")
        for failure in result.failures:
            click.echo(f"       {failure}")
    passed = sum(r.ok for r in report.results)
    failed = len(report.results) - passed
    click.echo(f"{passed} passed, {failed} failed ({len(report.test_files)} test files)")
    if failed or not report.results:
        raise SystemExit(1)


@cli.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of a rules file."""
    click.echo(json.dumps(json_schema(), indent=2))


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


def main() -> None:
    """Console script entry point."""
    cli(prog_name="dealkeeper")
