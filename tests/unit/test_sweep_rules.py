"""Sweep rules in the rule language: `schedule` and `find` load and are checked with their
positions, sweep rules fire only in their own sweep, and `date_of` writes a field's date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.config.errors import InvalidRulesError
from service.core.events import swept_event
from service.core.rules import RuleSet, load_rules, make_plan
from service.core.rules.model import Condition
from tests.unit.rules_support import METADATA, make_event

MOMENT = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # Monday 06:00 in New York
STALE = """\
timezone: America/New_York
rules:
  - name: stale-deals
    schedule: "0 6 * * 1-5"
    find: {status_type: active, date_updated: {older_than: 60d}}
    if:
      - confidence: {gt: 10}
    then:
      - set: {confidence: 10}
  - name: on-events
    if:
      - confidence: {gt: 10}
    then:
      - set: {note: seen}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidRulesError) as caught:
        load_rules(text, "rules/x.yaml")
    return [str(p) for p in caught.value.problems]


def sweep_rule(body: str, *, find: str = "{status_type: active}") -> str:
    return f'rules:\n  - name: s\n    schedule: "0 6 * * *"\n    find: {find}\n{body}'


THEN = "    then: [{set: {confidence: 1}}]\n"


def scheduled(schedule: str) -> str:
    """A rule `s` with this schedule line (written as is) and an empty find."""
    return f"rules:\n  - name: s\n    schedule: {schedule}\n    find: {{}}\n{THEN}"


def test_sweep_rule_loads_its_schedule_and_find() -> None:
    """The issue's example loads: its schedule, its filters, and a trigger no event carries."""
    rule = load_rules(STALE, "rules/x.yaml").rules[0]

    assert rule.sweep is not None
    assert (
        "0 6 * * 1-5",
        [("status_type", "eq", "active"), ("date_updated", "older_than", 60 * 86400)],
        ("sweep:stale-deals",),
    ) == (
        rule.sweep.schedule.text,
        [(f.name, f.operator, f.operand) for f in rule.sweep.filters],
        rule.triggers,
    )


def test_sweep_rule_checks_find_again_on_each_deal() -> None:
    """find's filters come first among the rule's conditions, with their positions."""
    rule = load_rules(STALE, "rules/x.yaml").rules[0]
    leaves = rule.condition.conditions

    assert [("status_type", 5, 12), ("date_updated", 5, 33), ("confidence", 7, 9)] == [
        (c.field, c.position.line, c.position.column) for c in leaves if isinstance(c, Condition)
    ]


def test_sweep_rule_fires_in_its_own_sweep() -> None:
    """A stale deal listed by the sweep gets the sweep rule's update, and only that."""
    rules = load_rules(STALE, "rules/x.yaml")
    deal = {"id": "oppo_1", "status_type": "active", "confidence": 50,
            "date_updated": "2025-12-01T12:00:00+00:00"}  # fmt: skip

    plan = make_plan(rules, swept_event(deal, sweep="stale-deals", moment=MOMENT), metadata=None)

    assert (("stale-deals",), {"confidence": 10}) == (plan.fired, dict(plan.update))


def test_sweep_rule_does_not_fire_on_a_deal_that_left_its_find() -> None:
    """A deal changed since the moment of the sweep is no longer stale: nothing to write."""
    rules = load_rules(STALE, "rules/x.yaml")
    deal = {"id": "oppo_1", "status_type": "active", "confidence": 50,
            "date_updated": "2026-03-09T09:00:00+00:00"}  # fmt: skip

    plan = make_plan(rules, swept_event(deal, sweep="stale-deals", moment=MOMENT), metadata=None)

    assert ((), {}) == (plan.fired, dict(plan.update))


def test_sweep_rule_never_fires_on_close_events() -> None:
    """A webhook event of a stale-looking deal fires the event rule, not the sweep rule."""
    rules = load_rules(STALE, "rules/x.yaml")
    event = make_event(data={"id": "oppo_1", "status_type": "active", "confidence": 50,
                             "date_updated": "2025-12-01T12:00:00+00:00"})  # fmt: skip

    plan = make_plan(rules, event, metadata=None)

    assert ("on-events",) == plan.fired
    assert (
        "a sweep rule: it runs on its schedule (0 6 * * 1-5), not on events"
        == plan.reasons_not_fired["stale-deals"]
    )


def test_sweep_rule_event_rules_never_fire_in_a_sweep() -> None:
    """In a sweep, rules that run on events stay quiet, whatever they test."""
    rules = load_rules(STALE, "rules/x.yaml")
    deal = {"id": "oppo_1", "status_type": "won", "confidence": 50}

    plan = make_plan(rules, swept_event(deal, sweep="stale-deals", moment=MOMENT), metadata=None)

    assert (
        "trigger sweep:stale-deals not in [opportunity.created, opportunity.updated]"
        == (plan.reasons_not_fired["on-events"])
    )


def test_sweep_rule_does_not_fire_in_another_sweep() -> None:
    """Two sweeps over the same deals each run only their own rule."""
    text = STALE + STALE.split("rules:\n", 1)[1].replace("stale-deals", "other").replace(
        "on-events", "other-events"
    )
    rules = load_rules(text, "rules/x.yaml")
    deal = {"id": "oppo_1", "status_type": "active", "confidence": 50,
            "date_updated": "2025-12-01T12:00:00+00:00"}  # fmt: skip

    plan = make_plan(rules, swept_event(deal, sweep="other", moment=MOMENT), metadata=None)

    assert ("other",) == plan.fired
    assert (
        "a sweep rule: it runs in its own sweep, not in sweep 'other'"
        == (plan.reasons_not_fired["stale-deals"])
    )


def test_sweep_rule_date_of_takes_the_first_field_with_a_date() -> None:
    """date_of(a, b) writes a's local date, or b's when a is empty."""
    text = sweep_rule(
        '    then:\n      - set: {date_won: "date_of(date_status_changed, date_updated)"}\n',
        find="{status_type: won}",
    ).replace("rules:", "timezone: America/New_York\nrules:")
    rules = load_rules(text, "rules/x.yaml")
    base = {"id": "oppo_1", "status_type": "won", "date_updated": "2026-03-09T03:00:00+00:00"}

    moved = {**base, "date_status_changed": "2026-02-01T04:00:00+00:00"}
    updates = [
        dict(make_plan(rules, swept_event(deal, sweep="s", moment=MOMENT), metadata=None).update)
        for deal in (moved, base)
    ]

    assert [{"date_won": "2026-01-31"}, {"date_won": "2026-03-08"}] == updates


def test_sweep_rule_date_of_without_any_date_does_not_fire() -> None:
    """With none of date_of's fields holding a date, the rule does not fire, and says why."""
    text = sweep_rule('    then:\n      - set: {date_won: "date_of(date_status_changed)"}\n')
    rules = load_rules(text, "rules/x.yaml")
    deal = {"id": "oppo_1", "status_type": "active"}

    plan = make_plan(rules, swept_event(deal, sweep="s", moment=MOMENT), metadata=METADATA)

    assert {"s": "date_of(date_status_changed): none of date_status_changed holds a date"} == (
        dict(plan.reasons_not_fired)
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (scheduled('"0 6 * * 8"'),
         ["rules/x.yaml:3:24: day of week must be 0-7 or sun-sat; found 8"]),
        (scheduled("0 6 * * mon-fry"),
         ["rules/x.yaml:3:27: day of week must be 0-7 or sun-sat; found 'fry'; did you mean "
          "'fri'?"]),
        (scheduled('"0 0 31 4 *"'),
         ["rules/x.yaml:3:15: schedule '0 0 31 4 *' never runs: no month has such a day"]),
        (scheduled("600"),
         ["rules/x.yaml:3:15: schedule needs five fields: minute hour day-of-month month "
          "day-of-week, such as '0 6 * * 1-5' (in quotes); found 600"]),
        (f"rules:\n  - name: s\n    find: {{}}\n{THEN}",
         ["rules/x.yaml:3:5: a sweep rule needs schedule, five fields: minute hour day-of-month "
          "month day-of-week, such as '0 6 * * 1-5'; it is missing"]),
        (f'rules:\n  - name: s\n    schedule: "0 6 * * *"\n{THEN}',
         ["rules/x.yaml:3:5: a sweep rule needs find, the filters that list its opportunities, "
          "such as {status_type: active}; it is missing"]),
        (sweep_rule(f"    trigger: opportunity.updated\n{THEN}"),
         ["rules/x.yaml:5:5: a sweep rule runs on its schedule, not on events; remove trigger"]),
        (sweep_rule(f"    if: [{{status_type: {{changed_to: won}}}}]\n{THEN}"),
         ["rules/x.yaml:5:11: changed_to never holds in a sweep: a sweep sees each deal as it "
          "is, not a change; test the value itself, such as status_type: ..."]),
        (f"rules:\n  - name: e\n    if: [{{date_status_changed: {{older_than: 3d}}}}]\n{THEN}",
         ["rules/x.yaml:3:11: date_status_changed is known to sweeps only (read from Close's "
          "status-change activity); a rule on events sees the change itself: status_type: "
          "{changed_to: won}"]),
        (sweep_rule('    then: [{set: {date_won: "date_of(value, date_updatd)"}}]\n'),
         ["rules/x.yaml:5:29: date_of needs date fields; value holds no date",
          "rules/x.yaml:5:29: unknown field 'date_updatd'; did you mean 'date_updated'? "
          "(expected a Close opportunity field such as value, status_type or date_won, or "
          "custom.NAME)"]),
        (sweep_rule('    then: [{set: {date_won: "date_of()"}}]\n'),
         ["rules/x.yaml:5:29: invalid date_of 'date_of()'; expected date_of(FIELD) or "
          "date_of(FIELD, FALLBACK, ...) with date fields"]),
    ],
)  # fmt: skip
def test_sweep_rule_mistakes_are_placed_and_explained(body: str, expected: list[str]) -> None:
    """Each mistake of a sweep rule comes out as file:line:column with what to do."""
    assert expected == problems_of(body)


@pytest.mark.parametrize(
    ("find", "expected"),
    [
        ("{stauts_type: active}",
         "rules/x.yaml:4:12: unknown filter 'stauts_type'; did you mean 'status_type'? (expected "
         "one of status_type, status, status_label, status_id, user_id, lead_id, value_period, "
         "date_created, date_updated, date_won, query, lead_saved_search_id)"),
        ("{confidence: {gt: 10}}",
         "rules/x.yaml:4:12: Close's list endpoint cannot filter on confidence; list with find "
         "and test it in if"),
        ("{status_type: Active}",
         "rules/x.yaml:4:25: status_type is one of active, won, lost; found 'Active'; did you "
         "mean 'active'?"),
        ("{date_updated: {older_than: 60 days}}",
         "rules/x.yaml:4:39: older_than needs a duration such as 90d, 12h, 30m or 2w; found "
         "'60 days'"),
        ("{date_updated: {gt: 100}}",
         "rules/x.yaml:4:31: date_updated gt needs a date (2026-01-31), a datetime or a date "
         "expression (today-30d); found 100"),
        ("{date_won: 2026-01-01}",
         "rules/x.yaml:4:22: date_won needs a range such as {older_than: 60d} or {gte: "
         "2026-01-01}; found '2026-01-01'"),
        ("{lead_id: {in: [lead_a, lead_b]}}",
         "rules/x.yaml:4:22: unknown operator for lead_id 'in'; expected one of eq"),
        ("{status: {in: [Won, 'Closed, won']}}",
         "rules/x.yaml:4:25: Close separates the values of in with commas; a value cannot "
         "hold one"),
        ("{query: {eq: x}}", "rules/x.yaml:4:19: query needs text; found a mapping"),
        ("[status_type]",
         "rules/x.yaml:4:11: find needs a mapping of filters such as {status_type: active}; "
         "found a list"),
    ],
)  # fmt: skip
def test_sweep_rule_find_mistakes_are_placed_and_explained(find: str, expected: str) -> None:
    """Each mistake in find says what Close can filter and how to write it."""
    assert [expected] == problems_of(sweep_rule(THEN, find=find))


def test_sweep_rule_test_files_take_a_sweeps_event() -> None:
    """A rule test's event with `sweep:` is that sweep's event."""
    from service.core.rules.language.casefile import CaseParser
    from service.core.rules.language.yamlnodes import Report, compose

    event = '{sweep: s, date_created: "2026-01-01", data: {id: o}}'
    text = f"tests:\n  - name: t\n    event: {event}\n    expect: {{no_update: true}}\n"
    report = Report("rules/x.test.yaml")
    root = compose(text, report)
    assert root is not None
    (case,) = CaseParser(report).cases(root)

    assert ("swept", "s", "sweep:s") == (case.event.action, case.event.sweep, case.event.trigger)


def test_sweep_rule_set_lists_its_sweeps() -> None:
    """A RuleSet names its sweep rules and finds rules by name."""
    rules: RuleSet = load_rules(STALE, "rules/x.yaml")

    assert (["stale-deals"], "on-events") == (
        [r.name for r in rules.sweep_rules],
        getattr(rules.rule("on-events"), "name", None),
    )
