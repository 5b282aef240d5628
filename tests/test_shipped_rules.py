"""The rules that ship: every file in rules/ loads, every rule test beside them passes.

An ops edit that breaks a rule or its tests fails here, before it is deployed.
"""

from __future__ import annotations

import json
from pathlib import Path

from service.rules import json_schema, load_rules_path, run_path, spec

ROOT = Path(__file__).parent.parent
RULES = ROOT / "rules"
SCHEMA = RULES / "rules.schema.json"
REGENERATE = "dealkeeper schema > rules/rules.schema.json"


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
