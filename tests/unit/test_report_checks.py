"""The `report:` section of a rules file: checks with find and if, no then."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.config.errors import InvalidRulesError
from service.core.events import swept_event
from service.core.rules import RuleSet, load_rules, make_plan

FILE = "rules/x.yaml"
CHECKS = """\
timezone: America/New_York
rules:
  - name: stamp
    if: [{status_type: won}]
    then: [{set: {confidence: 100}}]
report:
  - name: open-without-value
    description: Open deals nobody put a value on.
    find: {status_type: active}
    if:
      - value: {empty: true}
  - name: every-open-deal
    find: {status_type: active}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidRulesError) as caught:
        load_rules(text, FILE)
    return [str(p) for p in caught.value.problems]


def test_a_report_section_loads_as_checks_beside_the_rules() -> None:
    ruleset = load_rules(CHECKS, FILE)
    assert [r.name for r in ruleset.rules] == ["stamp"]
    assert [c.name for c in ruleset.checks] == ["open-without-value", "every-open-deal"]
    first = ruleset.checks[0]
    assert first.description == "Open deals nobody put a value on."
    assert [(f.name, f.operator, f.operand) for f in first.filters] == [
        ("status_type", "eq", "active")
    ]
    assert first.rule.timezone == "America/New_York"
    assert first.rule.actions == ()
    assert str(first.position) == "rules/x.yaml:7:5"


def test_a_file_may_hold_only_a_report() -> None:
    text = "report:\n  - name: a\n    find: {status_type: active}\n"
    ruleset = load_rules(text, FILE)
    assert ruleset.rules == () and [c.name for c in ruleset.checks] == ["a"]


def test_a_check_fails_a_deal_its_find_and_if_hold_for() -> None:
    check = load_rules(CHECKS, FILE).checks[0]
    alone = RuleSet(rules=(check.rule,))
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def fails(deal: dict[str, object]) -> bool:
        event = swept_event(deal, sweep=check.name, moment=now)
        return check.name in make_plan(alone, event, metadata=None).fired

    base = {"id": "oppo_1", "date_created": "2026-01-01T00:00:00+00:00"}
    assert fails({**base, "status_type": "active", "value": None})
    assert not fails({**base, "status_type": "active", "value": 5000})
    assert not fails({**base, "status_type": "won", "value": None})  # find's test, too


def test_no_event_of_closes_runs_a_check() -> None:
    ruleset = load_rules(CHECKS, FILE)
    check = ruleset.checks[1]  # holds for every open deal
    event = swept_event(
        {"id": "oppo_1", "status_type": "active", "date_created": "2026-01-01T00:00:00"},
        sweep="stamp",
        moment=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert check.name not in make_plan(RuleSet(rules=(check.rule,)), event, metadata=None).fired


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "report:\n  - name: a\n    find: {status_type: active}\n"
            "    then: [{set: {confidence: 1}}]\n",
            "rules/x.yaml:4:5: report checks only count the deals that fail them; remove then"
            " (a sweep rule, under rules: with a schedule, changes deals)",
        ),
        (
            "report:\n  - name: a\n    find: {status_type: active}\n    schedule: '0 6 * * *'\n",
            "rules/x.yaml:4:5: report checks run when `dealkeeper report` runs; remove schedule",
        ),
        (
            "report:\n  - name: a\n    find: {status_type: active}\n    color: red\n",
            "rules/x.yaml:4:5: unknown key 'color'; expected one of name, description, timezone,"
            " find, if",
        ),
        (
            "report:\n  - name: a\n",
            "rules/x.yaml:2:5: a report check needs the key 'find'; it is missing",
        ),
        (
            "report:\n  - find: {status_type: active}\n",
            "rules/x.yaml:2:5: a report check needs the key 'name'; it is missing",
        ),
        (
            "report: {}\n",
            "rules/x.yaml:1:9: report must be a list of checks; found an empty mapping",
        ),
        (
            "report:\n  - name: a\n    find: {value: 5}\n",
            "rules/x.yaml:3:12: Close's list endpoint cannot filter on value; list with find and"
            " test it in if",
        ),
        (
            "report:\n  - name: a\n    find: {}\n    if: [{value: {changed: true}}]\n",
            "rules/x.yaml:4:11: changed never holds in a sweep: a sweep sees each deal as it is,"
            " not a change; test the value itself, such as value: ...",
        ),
        (
            "rules:\n  - name: a\n    then: [{set: {confidence: 1}}]\n"
            "report:\n  - name: a\n    find: {}\n",
            "rules/x.yaml:5:5: duplicate report check name 'a'; first defined at rules/x.yaml:2",
        ),
    ],
)
def test_a_bad_report_section_gets_positioned_problems(text: str, expected: str) -> None:
    assert expected in problems_of(text)
