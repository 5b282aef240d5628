"""`dealkeeper test`: run the rule tests (`*.test.yaml`) beside the rules, offline; with
`--add-case EVENT_ID`, first turn a real event into one (commands/addcase.py)."""

from __future__ import annotations

import click

from service.commands.addcase import add_case
from service.commands.rules import rules_path
from service.config.errors import InvalidRulesError
from service.core.rules import RuleSet, discover, load_rule_sources, run_path
from service.core.rules.language.loader import read_sources


@click.command("test")
@click.argument("path", required=False)
@click.option("-v", "--verbose", is_flag=True, help="Also list the cases that passed.")
@click.option(
    "--add-case",
    "event_id",
    metavar="EVENT_ID",
    help="Append Close's event EVENT_ID (ev_...) as a case, personal data replaced, "
    "expecting what today's rules do; then run it. Reads Close's event log (or a job "
    "dealkeeper still holds in Redis); never writes to Close.",
)
@click.option(
    "--expect",
    metavar="EXPECTATION",
    help="With --add-case: expect this instead: no-update, or the case's expect keys in YAML, "
    "e.g. 'update: {confidence: 100}' or 'fired: [stamp-date-won]'.",
)
@click.option(
    "--to",
    "to_file",
    metavar="FILE",
    help="With --add-case: the test file to append to (created if missing). Default: the "
    "*.test.yaml beside the rules file whose rules fired, else cases.test.yaml in the folder.",
)
@click.option("--name", metavar="NAME", help="With --add-case: the case's name.")
def test_rules(
    path: str | None,
    verbose: bool,
    event_id: str | None,
    expect: str | None,
    to_file: str | None,
    name: str | None,
) -> None:
    """Run the rule tests (*.test.yaml) beside the rules, offline.

    With --add-case EVENT_ID, append a real event as a case instead and run it: ids kept,
    names, emails, phone numbers, notes and free-text custom fields replaced by placeholders,
    the update today's rules make as its expectation. Exits 1 when it cannot be added, or
    when it fails (only an --expect other than what the rules do can fail).
    """
    target = rules_path(path)
    if event_id is None:
        if expect is not None or to_file is not None or name is not None:
            raise click.UsageError("--expect, --to and --name go with --add-case EVENT_ID")
        _run_cases(target, verbose=verbose)
        return
    add_case(target, _rules_of(target), event_id, expect=expect, to=to_file, name=name)


def _run_cases(target: str, *, verbose: bool) -> None:
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


def _rules_of(target: str) -> RuleSet:
    """The rules `dealkeeper test TARGET` runs its cases against; exit 1 on mistakes."""
    try:
        return load_rule_sources(read_sources(discover(target)[0]))
    except InvalidRulesError as error:
        for problem in error.problems:
            click.echo(str(problem))
        raise SystemExit(1) from None
