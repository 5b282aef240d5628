"""judge, the reference reading of one rule: whether it fires, and the reason when not."""

from __future__ import annotations

from service.core.rules import load_rules
from service.core.rules.evaluation.verdicts import Verdict, judge
from tests.unit.rules_support import METADATA, make_event

RULES = load_rules(
    """\
timezone: America/New_York
rules:
  - name: off
    enabled: false
    then: [{set: {confidence: 1}}]
  - name: created-only
    trigger: opportunity.created
    then: [{set: {confidence: 2}}]
  - name: unknown-fields
    if:
      - custom.Nowhere: x
      - custom.Elsewhere: {empty: false}
      - custom.Nowhere: y
    then: [{set: {confidence: 3}}]
  - name: new-york-today
    if:
      - date_won: {gte: today}
    then: [{set: {confidence: 4}}]
  - name: two-unknown-statuses
    then:
      - set: {status: Nope}
      - set: {custom.Missing: 1}
""",
    "rules/v.yaml",
)
# 22:30 on the 27th in New York, the 28th in UTC.
EVENT = make_event(date_created="2026-11-28T03:30:00Z", data={"id": "o", "date_won": "2026-11-27"})


def verdict(name: str) -> Verdict:
    (rule,) = [r for r in RULES.rules if r.name == name]
    return judge(rule, EVENT, metadata=METADATA)


def test_a_disabled_rule_does_not_fire_and_says_so() -> None:
    result = verdict("off")

    assert (False, "disabled", "off") == (result.fired, result.reason, result.rule.name)


def test_a_rule_for_other_triggers_names_them() -> None:
    result = verdict("created-only")

    assert result.fired is False
    assert "trigger opportunity.updated not in [opportunity.created]" == result.reason


def test_unknown_custom_fields_are_named_once_each() -> None:
    result = verdict("unknown-fields")

    assert result.fired is False
    assert ("Nowhere", "Elsewhere") == result.unresolved
    assert "unknown custom field 'Nowhere'; unknown custom field 'Elsewhere'" == result.reason


def test_conditions_are_read_in_the_rules_timezone() -> None:
    """In New York the event's today is the 27th, so date_won >= today holds; in UTC it
    would be the 28th and would not."""
    assert verdict("new-york-today").fired is True


def test_actions_that_cannot_be_resolved_are_all_named() -> None:
    result = verdict("two-unknown-statuses")

    assert result.fired is False
    assert "; " in result.reason and "Nope" in result.reason and "Missing" in result.reason
    assert {"Nope", "Missing"} <= set(result.unresolved)
