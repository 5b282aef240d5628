"""The rules that ship: every file in rules/ loads, every rule test beside them passes.

An ops edit that breaks a rule or its tests fails here, before it is deployed. The recipes
in rules/examples/ (not loaded by the service) are held to the same standard, each with its
own tests, and docs/rules.md must describe every operator and action the language has.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from service.authoring.interactions import find_interactions
from service.authoring.unreported import find_unreported_changes
from service.core.rules import Rule, json_schema, load_rules, load_rules_path, run_path, spec
from service.core.rules.language.loader import is_rule_file
from service.core.rules.model import Position
from tests.unit.test_engine import DESIGN_RULES

ROOT = Path(__file__).parent.parent
RULES = ROOT / "rules"
EXAMPLES = RULES / "examples"
RECIPES = sorted(p for p in EXAMPLES.iterdir() if is_rule_file(p))
SCHEMA = RULES / "rules.schema.json"
REGENERATE = "dealkeeper schema > rules/rules.schema.json"
MODELINE = "# yaml-language-server: $schema="


def test_shipped_rules_load() -> None:
    """Every rule file in rules/ loads without a problem."""
    ruleset = load_rules_path(RULES)

    assert [] != list(ruleset.rules)


def test_shipped_rules_pass_their_tests() -> None:
    """Every *.test.yaml in rules/ passes; failures are listed with their positions."""
    report = run_path(RULES)
    failures = "\n".join(report.failures())

    assert [] != list(report.results)
    assert "" == failures, f"rule tests failed:\n{failures}"


def test_shipped_rules_every_rule_has_a_test() -> None:
    """Each shipped rule is named by at least one rule test, firing or not."""
    report = run_path(RULES)
    named = {
        name
        for result in report.results
        for name in (*(result.case.expect.fired or ()), *result.case.expect.not_fired)
    }

    assert set() == {rule.name for rule in load_rules_path(RULES).rules} - named


def test_shipped_rules_schema_matches_its_snapshot() -> None:
    """The JSON Schema of rule files is the checked-in one; regenerate it when the spec changes."""
    pinned = json.loads(SCHEMA.read_text(encoding="utf-8"))

    assert pinned == json_schema(), f"the rules schema changed; regenerate it with: {REGENERATE}"


def test_shipped_rules_schema_follows_the_spec() -> None:
    """The schema names exactly the spec's keys, operators and actions."""
    schema = json_schema()
    defs = schema["$defs"]

    assert (
        list(spec.TOP_LEVEL_KEYS),
        list(spec.RULE_KEYS),
        list(spec.OPERATORS),
        list(spec.ACTIONS),
        list(spec.TRIGGERS),
        "https://json-schema.org/draft/2020-12/schema",
    ) == (
        list(schema["properties"]),
        list(defs["rule"]["properties"]),
        list(defs["operators"]["properties"]),
        list(defs["action"]["properties"]),
        defs["trigger"]["enum"],
        schema["$schema"],
    )


def test_shipped_rules_hold_the_design_example_unchanged() -> None:
    """rules/deal-hygiene.yaml says exactly what DESIGN.md's normative example says."""
    shipped = load_rules_path(RULES / "deal-hygiene.yaml")
    design = load_rules(DESIGN_RULES, "rules/deal-hygiene.yaml")

    assert [_without_position(r) for r in design.rules] == [
        _without_position(r) for r in shipped.rules
    ]


def _without_position(rule: Rule) -> Rule:
    """The rule with every position blanked, so comment lines above it do not matter."""
    nowhere = Position("", 0, 0)
    return replace(
        rule,
        position=nowhere,
        condition=replace(
            rule.condition,
            position=nowhere,
            conditions=tuple(replace(c, position=nowhere) for c in rule.condition.conditions),
        ),
        actions=tuple(replace(a, position=nowhere) for a in rule.actions),
    )


def test_shipped_examples_are_at_least_eight_recipes() -> None:
    """rules/examples/ holds at least eight recipes, each with a test file beside it."""
    missing = [p.name for p in RECIPES if not p.with_suffix(".test.yaml").is_file()]

    assert (True, []) == (len(RECIPES) >= 8, missing)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_examples_pass_their_tests(recipe: Path) -> None:
    """Each recipe, on its own, passes every case of its *.test.yaml."""
    report = run_path(recipe)
    failures = "\n".join(report.failures())

    assert [] != list(report.results)
    assert "" == failures, f"rule tests failed:\n{failures}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_examples_every_rule_has_a_test(recipe: Path) -> None:
    """Each recipe's rules are each named by one of its tests, firing or not."""
    report = run_path(recipe)
    named = {
        name
        for result in report.results
        for name in (*(result.case.expect.fired or ()), *result.case.expect.not_fired)
    }

    assert set() == {rule.name for rule in load_rules_path(recipe).rules} - named


def test_shipped_examples_combine_without_warnings() -> None:
    """All recipes loaded together validate without a conflict or ping-pong warning."""
    assert [] == [str(w) for w in find_interactions(load_rules_path(EXAMPLES))]


@pytest.mark.parametrize("path", [RULES, EXAMPLES], ids=str)
def test_shipped_rules_wait_on_no_change_close_may_not_report(path: Path) -> None:
    """No shipped rule fires on updates only through a custom field reported as changed."""
    assert [] == [str(w) for w in find_unreported_changes(load_rules_path(path))]


@pytest.mark.parametrize(
    "path", [*RECIPES, *sorted(p for p in RULES.iterdir() if is_rule_file(p))], ids=str
)
def test_shipped_rule_files_carry_the_schema_modeline(path: Path) -> None:
    """Every shipped rule file tells editors where its schema is."""
    assert path.read_text(encoding="utf-8").startswith(MODELINE)


def test_shipped_docs_describe_every_operator_and_action() -> None:
    """docs/rules.md has a section for every operator and action of the spec."""
    docs = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    names = [*spec.OPERATORS, *spec.ACTIONS]

    assert [] == [name for name in names if f"### `{name}`" not in docs]
