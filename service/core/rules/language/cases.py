"""Rule tests (`*.test.yaml`): load them, run them against the engine, report the failures.

`load_cases` and `run_case` are pure; `discover` and `run_path` read the rules folder, as
`dealkeeper test` and the shipped-rules test do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.config.errors import InvalidRulesError, Problem
from service.core.rules.evaluation.engine import make_plan
from service.core.rules.evaluation.values import show, values_equal
from service.core.rules.language.casefile import Case, CaseParser, EventReader, Expect
from service.core.rules.language.loader import (
    is_test_file,
    load_rule_sources,
    read_sources,
    rule_file_names,
)
from service.core.rules.language.yamlnodes import Report, compose
from service.core.rules.model import Plan, RuleSet

__all__ = [
    "Case",
    "CaseResult",
    "CasesReport",
    "EventReader",
    "Expect",
    "discover",
    "load_cases",
    "run_case",
    "run_path",
]


@dataclass(frozen=True)
class CaseResult:
    """How one case went: ok, or readable expected-versus-actual failures."""

    case: Case
    ok: bool
    failures: list[str]
    plan: Plan


@dataclass(frozen=True)
class CasesReport:
    """Every case of a run, with the files it read."""

    rule_files: tuple[str, ...]
    test_files: tuple[str, ...]
    results: tuple[CaseResult, ...]

    @property
    def ok(self) -> bool:
        """True when every case passed."""
        return all(r.ok for r in self.results)

    def failures(self) -> list[str]:
        """One line per failure: `file:line:column: case name: what differs`."""
        return [
            f"{r.case.position}: {r.case.name}: {failure}"
            for r in self.results
            for failure in r.failures
        ]


def load_cases(text: str, file: str, *, read_event_file: EventReader | None = None) -> list[Case]:
    """The cases of one test file; raises InvalidRulesError listing every mistake."""
    report = Report(file)
    root = compose(text, report)
    if root is None and not report.problems:
        report.add_at(1, 1, "a test file must be a mapping with key tests; found an empty file")
    cases = [] if root is None else CaseParser(report, read_event_file).cases(root)
    names: set[str] = set()
    for case in cases:
        if case.name in names:
            where = case.position
            message = f"duplicate test name '{case.name}'"
            report.add_at(where.line, where.column, message)
        names.add(case.name)
    if report.problems:
        raise InvalidRulesError(report.problems)
    return cases


def run_case(ruleset: RuleSet, case: Case) -> CaseResult:
    """Run one case through the engine and compare the plan with what it expects."""
    plan = make_plan(ruleset, case.event, metadata=case.metadata)
    known = {rule.name for rule in ruleset.rules}
    expect = case.expect
    failures = [
        *_unknown_rules(expect, known),
        *_fired_failures(expect, plan),
        *_update_failures("update", expect.update, plan.update),
        *_update_failures("dry_run_update", expect.dry_run_update, plan.dry_run_update),
        *_no_update_failures(expect, plan),
        *_tz_failures(expect, plan),
    ]
    return CaseResult(case=case, ok=not failures, failures=failures, plan=plan)


def _unknown_rules(expect: Expect, known: set[str]) -> list[str]:
    named = [*(expect.fired or ()), *expect.not_fired]
    return [f"no rule is named '{name}'" for name in dict.fromkeys(named) if name not in known]


def _fired_failures(expect: Expect, plan: Plan) -> list[str]:
    failures = [
        f"not_fired: rule '{name}' fired" for name in expect.not_fired if name in plan.fired
    ]
    if expect.fired is None or set(expect.fired) == set(plan.fired):
        return failures
    failures.append(f"fired: expected {_names(expect.fired)}, got {_names(plan.fired)}")
    for name in sorted(set(expect.fired) - set(plan.fired)):
        reason = plan.ignored or plan.reasons_not_fired.get(name)
        if reason:
            failures.append(f"rule '{name}' did not fire: {reason}")
    return failures


def _update_failures(
    what: str, expected: Mapping[str, Any] | None, actual: Mapping[str, Any]
) -> list[str]:
    if expected is None:
        return []
    failures = []
    for key in dict.fromkeys([*expected, *actual]):
        if key not in actual:
            failures.append(f"{what}: expected {key} = {show(expected[key])}, got nothing")
        elif key not in expected:
            failures.append(f"{what}: unexpected {key} = {show(actual[key])}")
        elif not values_equal(expected[key], actual[key]):
            failures.append(
                f"{what}: {key} expected {show(expected[key])}, got {show(actual[key])}"
            )
    return failures


def _no_update_failures(expect: Expect, plan: Plan) -> list[str]:
    if expect.no_update is None or expect.no_update != plan.has_update:
        return []
    if expect.no_update:
        return [f"no_update: expected no update, got {show(dict(plan.update))}"]
    return ["no_update: expected an update, got none"]


def _tz_failures(expect: Expect, plan: Plan) -> list[str]:
    if expect.tz_offset_hours is None or expect.tz_offset_hours == plan.tz_offset_hours:
        return []
    return [f"tz_offset_hours: expected {expect.tz_offset_hours}, got {plan.tz_offset_hours}"]


def _names(names: Sequence[str]) -> str:
    return "[" + ", ".join(sorted(names)) + "]"


def discover(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """(rule files, test files) that a path stands for: a folder, a rules file or a test file."""
    given, text = Path(path), os.fspath(path)
    if given.is_dir():
        tests = [p.name for p in sorted(given.iterdir()) if p.is_file() and is_test_file(p)]
        return rule_file_names(path), [os.path.join(text, name) for name in tests]
    if given.is_file() and is_test_file(given):
        return rule_file_names(os.path.dirname(text)), [text]
    rules = rule_file_names(path)
    stem = text.rsplit(".", 1)[0]
    siblings = [f"{stem}.test.yaml", f"{stem}.test.yml"]
    return rules, [s for s in siblings if Path(s).is_file()]


def run_path(path: str | os.PathLike[str]) -> CasesReport:
    """Load the rules and cases `path` stands for and run every case."""
    rule_names, test_names = discover(path)
    problems: list[Problem] = []
    ruleset = RuleSet()
    try:
        ruleset = load_rule_sources(read_sources(rule_names))
    except InvalidRulesError as e:
        problems.extend(e.problems)
    cases: list[Case] = []
    for name, text in read_sources(test_names):
        try:
            cases.extend(load_cases(text, name, read_event_file=_reader(name)))
        except InvalidRulesError as e:
            problems.extend(e.problems)
    if problems:
        raise InvalidRulesError(problems)
    results = tuple(run_case(ruleset, case) for case in cases)
    return CasesReport(tuple(rule_names), tuple(test_names), results)


def _reader(test_file: str) -> EventReader:
    folder = Path(test_file).parent

    def read(relative: str) -> str:
        return (folder / relative).read_text(encoding="utf-8")

    return read
