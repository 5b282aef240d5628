"""`dealkeeper validate` and `schema`: check rule files before they ship; the helpers the
commands that read rules share.

validate: every mistake as `file:line:column: message` (with a "did you mean"), warnings
about rules that work against each other, and with `--online` the names and values checked
against the live Close organization. schema: the JSON Schema editors use. (`test` is in
ruletests.py.)
"""

from __future__ import annotations

import json
import os

import click

from service.adapters.close import CloseClient, Throttle
from service.adapters.metadata import fetch_metadata
from service.authoring.findings import counted, many, noted, warnings_of
from service.authoring.interactions import RuleWarning
from service.authoring.online import check_against_close
from service.config.errors import InvalidRulesError, Problem
from service.config.settings import DEFAULT_RULES_PATH, Settings
from service.core.rules import Metadata, RuleSet, json_schema, load_rules_path

# A person at a terminal can wait out a rate limit; failing would only make them rerun it.
CLI_MAX_INLINE_WAIT_SEC = 60.0


def rules_path(path: str | None) -> str:
    """PATH if given, else DEALKEEPER_RULES, else rules/."""
    return path or os.environ.get("DEALKEEPER_RULES") or DEFAULT_RULES_PATH


def load_or_exit(path: str) -> RuleSet:
    """The rules at `path`; on mistakes, print each one and exit 1."""
    try:
        return load_rules_path(path)
    except InvalidRulesError as error:
        for problem in error.problems:
            click.echo(str(problem))
        raise SystemExit(1) from None


def close_client(
    settings: Settings, *, needed_for: str, throttle: Throttle | None = None
) -> CloseClient:
    """A client for CLOSE_API_KEY that waits out rate limits (pacing with `throttle`, when
    given); a clear error without a key."""
    if not settings.close_api_key:
        raise click.UsageError(
            f"{needed_for} needs CLOSE_API_KEY (a key of your Close organization)"
        )
    return CloseClient.from_settings(
        settings, max_inline_wait_sec=CLI_MAX_INLINE_WAIT_SEC, throttle=throttle
    )


def metadata_from_close(settings: Settings) -> Metadata | None:
    """Close's statuses and custom fields when CLOSE_API_KEY is set, else None (offline)."""
    if not settings.close_api_key:
        return None
    with close_client(settings, needed_for="reading metadata") as client:
        return fetch_metadata(client)


@click.command()
@click.argument("path", required=False)
@click.option("--online", is_flag=True, help="Also check names and values against Close.")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
def validate(path: str | None, online: bool, strict: bool) -> None:
    """Check rule files: exit 0 when all are good, else print file:line:column: message.

    Warnings (two rules writing one field differently, a rule feeding another's condition,
    a write of a field no PUT of Close's documents takes, an update rule waiting on a
    custom-field change Close may never report) are printed as
    file:line:column: warning: message and fail only with --strict.
    """
    target = rules_path(path)
    ruleset = load_or_exit(target)
    problems: list[Problem] = []
    if online:
        with close_client(Settings.from_env(), needed_for="validate --online") as client:
            problems = check_against_close(ruleset, fetch_metadata(client))
    warnings = warnings_of(ruleset)
    findings: list[Problem | RuleWarning] = [*problems, *warnings]
    for finding in sorted(findings, key=lambda f: (f.file, f.line, f.column, str(f))):
        click.echo(str(finding))
    if problems:
        raise SystemExit(1)
    checked = " and checked against Close" if online else ""
    files = many(len(ruleset.files), "file")
    click.echo(f"ok: {counted(ruleset)} in {files} ({target}){checked}{noted(warnings)}")
    if warnings and strict:
        raise SystemExit(1)


@click.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of a rules file."""
    click.echo(json.dumps(json_schema(), indent=2))
