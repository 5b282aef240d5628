"""`dealkeeper test`: run the rule tests (`*.test.yaml`) beside the rules, offline."""

from __future__ import annotations

import click

from service.commands.rules import rules_path
from service.config.errors import InvalidRulesError
from service.core.rules import run_path


@click.command("test")
@click.argument("path", required=False)
@click.option("-v", "--verbose", is_flag=True, help="Also list the cases that passed.")
def test_rules(path: str | None, verbose: bool) -> None:
    """Run the rule tests (*.test.yaml) beside the rules, offline."""
    target = rules_path(path)
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
