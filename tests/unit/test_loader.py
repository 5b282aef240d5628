"""Loading rule files: the design's example, YAML 1.2 scalars, and every mistake pinned."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from service.config.errors import InvalidRulesError
from service.core.rules import load_rule_sources, load_rules, load_rules_path
from service.core.rules.model import (
    Action,
    AllOf,
    AnyOf,
    Condition,
    ConditionNode,
    DateExpr,
    Not,
    NowExpr,
    Position,
    Rule,
    RuleSet,
)

FILE = "rules/x.yaml"
INVALID = Path(__file__).parent.parent / "fixtures" / "rules" / "invalid"

DESIGN_EXAMPLE = """\
# rules/deal-hygiene.yaml
timezone: America/New_York          # default for every date in this file

rules:
  - name: stamp-date-won
    description: A deal moved to won carries the New York date of the move as date_won.
    trigger: [opportunity.created, opportunity.updated]
    if:
      - status_type: {changed_to: won}
    then:
      - set: {date_won: today}

  - name: tag-big-deals
    trigger: opportunity.updated
    if:
      - value: {gte: 1000000}                     # cents: $10,000
      - custom.Segment: {not_contains: Enterprise}
    then:
      - add: {custom.Segment: Enterprise}

  - name: full-confidence-when-won
    if:
      - status_type: won
      - confidence: {lt: 100}
    then:
      - set: {confidence: 100}
"""


def at(line: int, column: int, file: str = FILE) -> Position:
    return Position(file, line, column)


def problems_of(text: str, file: str = FILE) -> list[str]:
    with pytest.raises(InvalidRulesError) as caught:
        load_rules(text, file)
    return [str(p) for p in caught.value.problems]


def leaves(node: ConditionNode) -> list[Condition]:
    """The field tests of a condition tree, in order."""
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return leaves(node.condition)
    return [leaf for child in node.conditions for leaf in leaves(child)]


def rule_text(body: str) -> str:
    """A one-rule file around `body` (the rule's keys, indented by four spaces)."""
    return "rules:\n  - name: r\n" + body


def test_loader_design_example_loads_as_described() -> None:
    """The design's example file becomes exactly these three rules."""
    expected = (
        Rule(
            name="stamp-date-won",
            triggers=("opportunity.created", "opportunity.updated"),
            condition=AllOf((Condition("status_type", "changed_to", "won", at(9, 9)),), at(9, 7)),
            actions=(Action("set", "date_won", DateExpr(0, "today"), at(11, 15)),),
            timezone="America/New_York",
            position=at(5, 5),
            description="A deal moved to won carries the New York date of the move as date_won.",
        ),
        Rule(
            name="tag-big-deals",
            triggers=("opportunity.updated",),
            condition=AllOf(
                (
                    Condition("value", "gte", 1000000, at(16, 9)),
                    Condition("custom.Segment", "not_contains", "Enterprise", at(17, 9)),
                ),
                at(16, 7),
            ),
            actions=(Action("add", "custom.Segment", "Enterprise", at(19, 15)),),
            timezone="America/New_York",
            position=at(13, 5),
        ),
        Rule(
            name="full-confidence-when-won",
            triggers=("opportunity.created", "opportunity.updated"),
            condition=AllOf(
                (
                    Condition("status_type", "eq", "won", at(23, 9)),
                    Condition("confidence", "lt", 100, at(24, 9)),
                ),
                at(23, 7),
            ),
            actions=(Action("set", "confidence", 100, at(26, 15)),),
            timezone="America/New_York",
            position=at(21, 5),
        ),
    )

    assert expected == load_rules(DESIGN_EXAMPLE, FILE).rules


def test_loader_defaults_trigger_timezone_enabled_and_dry_run() -> None:
    """A minimal rule runs on created and updated, in UTC, enabled, for real."""
    rule = load_rules(rule_text("    then: [{set: {confidence: 100}}]\n"), FILE).rules[0]

    assert (
        ("opportunity.created", "opportunity.updated"),
        "UTC",
        True,
        False,
        AllOf((), at(2, 5)),
    ) == (
        rule.triggers,
        rule.timezone,
        rule.enabled,
        rule.dry_run,
        rule.condition,
    )


def test_loader_yaml_12_keeps_no_yes_on_off_as_text() -> None:
    """Only true/false are booleans: a choice named No stays the text "No"."""
    text = rule_text(
        "    if:\n"
        "      - custom.Answer: No\n"
        "      - custom.Other: {in: [yes, on, off, y, n, Yes, NO]}\n"
        "    then: [{set: {custom.Flag: True, custom.Other: FALSE}}]\n"
    )
    rule = load_rules(text, FILE).rules[0]

    assert ["No", ["yes", "on", "off", "y", "n", "Yes", "NO"]] == [
        c.operand for c in leaves(rule.condition)
    ]
    assert [True, False] == [a.value for a in rule.actions]


def test_loader_yaml_12_reads_numbers_and_nulls_but_not_timestamps() -> None:
    """Ints, floats and null are read as YAML 1.2 does; a bare date stays text."""
    text = rule_text(
        "    then: [{set: {custom.a: 012, custom.b: 0x1F, custom.c: 1.5e3, custom.d: ~, "
        "custom.e: 2026-11-27, custom.f: '5'}}]\n"
    )
    actions = load_rules(text, FILE).rules[0].actions

    assert [12, 31, 1500.0, None, "2026-11-27", "5"] == [a.value for a in actions]


def test_loader_on_is_an_alias_of_trigger() -> None:
    """`on:` names the triggers as `trigger:` does (and YAML 1.2 keeps it a key)."""
    text = rule_text("    on: [opportunity.deleted]\n    then: [{unset: [date_won]}]\n")

    assert ("opportunity.deleted",) == load_rules(text, FILE).rules[0].triggers


def test_loader_rule_timezone_overrides_the_files() -> None:
    """A rule's own timezone wins over the file's."""
    text = "timezone: America/New_York\n" + rule_text(
        "    timezone: Asia/Kolkata\n    then: [{set: {confidence: 1}}]\n"
    )

    assert "Asia/Kolkata" == load_rules(text, FILE).rules[0].timezone


def test_loader_builds_any_and_not_trees() -> None:
    """any, not with a mapping, not with a list, and several fields in one mapping nest."""
    text = rule_text(
        "    if:\n"
        "      - any: [{status: Won}, {value: {gt: 5}, confidence: 10}]\n"
        "      - not: {status_type: lost}\n"
        "      - not: [{custom.a: 1}, {custom.b: 2}]\n"
        "    then: [{set: {confidence: 1}}]\n"
    )
    expected = AllOf(
        (
            AnyOf(
                (
                    Condition("status", "eq", "Won", at(4, 16)),
                    AllOf(
                        (
                            Condition("value", "gt", 5, at(4, 31)),
                            Condition("confidence", "eq", 10, at(4, 47)),
                        ),
                        at(4, 30),
                    ),
                ),
                at(4, 14),
            ),
            Not(Condition("status_type", "eq", "lost", at(5, 15)), at(5, 14)),
            Not(
                AllOf(
                    (
                        Condition("custom.a", "eq", 1, at(6, 16)),
                        Condition("custom.b", "eq", 2, at(6, 31)),
                    ),
                    at(6, 14),
                ),
                at(6, 14),
            ),
        ),
        at(4, 7),
    )

    assert expected == load_rules(text, FILE).rules[0].condition


def test_loader_if_may_be_a_single_mapping() -> None:
    """`if: {field: value}` is a list of one condition."""
    text = rule_text("    if: {status_type: won}\n    then: [{set: {confidence: 1}}]\n")

    assert (
        AllOf((Condition("status_type", "eq", "won", at(3, 10)),), at(3, 9))
        == load_rules(text, FILE).rules[0].condition
    )


def test_loader_converts_operands_by_kind() -> None:
    """Durations become seconds, date operands dates or DateExprs, lists stay lists."""
    text = rule_text(
        "    if:\n"
        "      - date_won: {older_than: 2w, lt: today-30d, gte: 2026-01-01, eq: today}\n"
        "      - status: {changed_from: [Active, Lost], matches: '^W'}\n"
        "    then: [{set: {confidence: 1}}]\n"
    )
    condition = load_rules(text, FILE).rules[0].condition

    assert [
        1209600,
        DateExpr(-30, "today-30d"),
        date(2026, 1, 1),
        DateExpr(0, "today"),
        ["Active", "Lost"],
        "^W",
    ] == [c.operand for c in leaves(condition)]


def test_loader_reads_actions_in_order() -> None:
    """Each field of each action becomes one Action, in the order written."""
    text = rule_text(
        "    then:\n"
        "      - set: {date_won: today+7d, date_lost: null, note: now, status: Won}\n"
        "      - unset: [confidence, custom.Reason]\n"
        "      - unset: value\n"
        "      - add: {custom.Tags: [a, b]}\n"
        "      - remove: {custom.Tags: c}\n"
    )
    expected = [
        ("set", "date_won", DateExpr(7, "today+7d")),
        ("set", "date_lost", None),
        ("set", "note", NowExpr()),
        ("set", "status", "Won"),
        ("unset", "confidence", None),
        ("unset", "custom.Reason", None),
        ("unset", "value", None),
        ("add", "custom.Tags", ["a", "b"]),
        ("remove", "custom.Tags", "c"),
    ]

    assert expected == [(a.kind, a.field, a.value) for a in load_rules(text, FILE).rules[0].actions]


def test_loader_flags_enabled_and_dry_run() -> None:
    """enabled: false and dry_run: true are kept on the rule."""
    text = rule_text("    enabled: false\n    dry_run: true\n    then: [{set: {confidence: 1}}]\n")
    rule = load_rules(text, FILE).rules[0]

    assert (False, True) == (rule.enabled, rule.dry_run)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules: [\n",
            "rules/x.yaml:2:1: invalid YAML: while parsing a flow node, expected the node "
            "content, but found '<stream end>'",
        ),
        (
            "rules:\n  - name: a: b\n",
            "rules/x.yaml:2:12: invalid YAML: mapping values are not allowed here",
        ),
        (
            "",
            "rules/x.yaml:1:1: a rules file must be a mapping with keys timezone, rules, report;"
            " found an empty file",
        ),
        (
            "- a\n",
            "rules/x.yaml:1:1: a rules file must be a mapping with keys timezone, rules, report;"
            " found a list",
        ),
        (
            "timezone: UTC\n",
            "rules/x.yaml:1:1: a rules file needs the key 'rules' (a list of rules) or 'report';"
            " it is missing",
        ),
        ("rules: {}\n", "rules/x.yaml:1:8: rules must be a list of rules; found an empty mapping"),
        (
            "rules: []\nrule: []\n",
            "rules/x.yaml:2:1: unknown key 'rule'; did you mean 'rules'? (expected one of "
            "timezone, rules, report)",
        ),
        (
            "rules: [5]\n",
            "rules/x.yaml:1:9: a rule must be a mapping with name, if and then; found 5",
        ),
        (
            "timezone: Mars/Base\nrules: []\n",
            "rules/x.yaml:1:11: unknown timezone 'Mars/Base'; expected an IANA name such as "
            "America/New_York or UTC",
        ),
        ("rules: []\nrules: []\n", "rules/x.yaml:2:1: duplicate key 'rules' in this mapping"),
    ],
)
def test_loader_reports_file_level_mistakes(text: str, expected: str) -> None:
    """Syntax and file-shape mistakes come out as file:line:column: message."""
    assert [expected] == problems_of(text)


TAG = "YAML tags are not allowed; found {tag} (write the value without it)"
LOOP = (
    "this node holds an alias of itself (*), a loop no rule can be read from; an alias may "
    "only repeat a node outside it"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - name: r\n    if: [{note: !!python/object/apply:os.system ['x']}]\n"
            "    then: [{set: {confidence: 1}}]\n",
            ["3:17: " + TAG.format(tag="!!python/object/apply:os.system")],
        ),
        (
            "rules:\n  - name: r\n    then: [{set: {note: !!python/name:os.system ''}}]\n",
            ["3:25: " + TAG.format(tag="!!python/name:os.system")],
        ),
        ("rules: !!set {a}\n", ["1:8: " + TAG.format(tag="!!set")]),
        (
            "rules:\n  - name: !secret r\n    then: !!omap [{set: {confidence: 1}}]\n",
            ["2:11: " + TAG.format(tag="!secret"), "3:11: " + TAG.format(tag="!!omap")],
        ),
        ("rules: &r [*r]\n", ["1:8: " + LOOP]),
        (
            "rules:\n  - name: r\n    if: &c [{any: *c}]\n    then: [{set: {confidence: 1}}]\n",
            ["3:9: " + LOOP],
        ),
    ],
)
def test_loader_refuses_yaml_tags_and_alias_loops_where_written(
    text: str, expected: list[str]
) -> None:
    """A YAML tag (which a Python YAML loader could turn into a call) is reported as a tag
    at the tag, not as the list or mapping it tags; an alias inside the node it names is a
    loop, reported at the anchor instead of recursing for ever."""
    assert [f"rules/x.yaml:{e}" for e in expected] == problems_of(text)


def test_loader_checks_a_node_repeated_by_aliases_once() -> None:
    """Aliases of aliases repeat a node 2**40 times over; each node is checked once, so the
    file is refused at once (checked per repetition, it would outlast the test's timeout)."""
    levels = ["a0: &a0 [x, x]"] + [f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}]" for n in range(1, 41)]
    text = "rules: []\nx:\n" + "".join(f"  {level}\n" for level in levels)

    assert [
        "rules/x.yaml:2:1: unknown key 'x'; expected one of timezone, rules, report"
    ] == problems_of(text)


def test_loader_aliases_that_repeat_a_node_elsewhere_are_read() -> None:
    """Plain YAML tags of the core schema and aliases that repeat a node are fine."""
    ruleset = load_rules(
        "rules:\n"
        "  - name: a\n    if: [&won {status_type: !!str won}]\n    then: [{set: {confidence: 1}}]\n"
        "  - name: b\n    if: [*won]\n    then: [{set: {confidence: !!int '2'}}]\n",
        FILE,
    )

    assert [["won"], ["won"]] == [
        [leaf.operand for leaf in leaves(rule.condition)] for rule in ruleset.rules
    ]


RULE_MISTAKES = [
    (
        "    thne: []\n",
        [
            "rules/x.yaml:2:5: a rule needs the key 'then'; it is missing",
            "rules/x.yaml:3:5: unknown key 'thne'; did you mean 'then'? (expected one of name, "
            "description, trigger, on, timezone, enabled, dry_run, schedule, find, if, then)",
        ],
    ),
    (
        "    then: []\n",
        ["rules/x.yaml:3:11: then needs a non-empty list of actions; found an empty list"],
    ),
    (
        "    then: {set: {confidence: 1}}\n",
        ["rules/x.yaml:3:11: then needs a non-empty list of actions; found a mapping"],
    ),
    (
        "    trigger: opportunity.changed\n    then: [{set: {confidence: 1}}]\n",
        [
            "rules/x.yaml:3:14: unknown trigger 'opportunity.changed'; did you mean "
            "'opportunity.updated'? (expected one of opportunity.created, opportunity.updated, "
            "opportunity.deleted)",
        ],
    ),
    (
        "    trigger: [opportunity.created, 5]\n    then: [{set: {confidence: 1}}]\n",
        [
            "rules/x.yaml:3:36: a trigger must be an event name, one of opportunity.created, "
            "opportunity.updated, opportunity.deleted; found 5",
        ],
    ),
    (
        "    trigger: opportunity.created\n    on: opportunity.updated\n    then: [{set: {note: "
        "a}}]\n",
        [
            "rules/x.yaml:4:5: use either trigger or on, not both",
        ],
    ),
    (
        "    timezone: America/NewYork\n    then: [{set: {confidence: 1}}]\n",
        [
            "rules/x.yaml:3:15: unknown timezone 'America/NewYork'; did you mean "
            "'America/New_York'? (expected an IANA name such as America/New_York or UTC)",
        ],
    ),
    (
        "    enabled: no\n    dry_run: 1\n    then: [{set: {confidence: 1}}]\n",
        [
            "rules/x.yaml:3:14: enabled needs true or false; found 'no'",
            "rules/x.yaml:4:14: dry_run needs true or false; found 1",
        ],
    ),
    (
        "    description: 5\n    then: [{set: {confidence: 1}}]\n",
        ["rules/x.yaml:3:18: description must be text; found 5"],
    ),
    (
        "    if: 5\n    then: [{set: {confidence: 1}}]\n",
        ["rules/x.yaml:3:9: if needs a list of conditions; found 5"],
    ),
]


@pytest.mark.parametrize(("body", "expected"), RULE_MISTAKES)
def test_loader_reports_rule_level_mistakes(body: str, expected: list[str]) -> None:
    """Unknown, missing and malformed rule keys are each reported where they are."""
    assert expected == problems_of(rule_text(body))


def test_loader_reports_missing_name() -> None:
    """A rule without a name is reported at the rule."""
    assert ["rules/x.yaml:1:9: a rule needs the key 'name'; it is missing"] == problems_of(
        "rules: [{then: [{set: {confidence: 1}}]}]\n"
    )


def test_loader_reports_empty_name() -> None:
    """A name must be non-empty text."""
    assert ["rules/x.yaml:2:11: name must be non-empty text; found ''"] == problems_of(
        "rules:\n  - name: ''\n    then: [{set: {confidence: 1}}]\n"
    )


CONDITION_MISTAKES = [
    (
        "custom.Segment: {contains_any: [Enterprise]}",
        "1:18: unknown operator 'contains_any'; did you mean 'contains'? (expected one of eq, ne, "
        "in, not_in, gt, gte, lt, lte, contains, not_contains, matches, empty, changed, "
        "changed_from, changed_to, older_than, newer_than)",
    ),
    ("status: {in: Won}", "1:14: in needs a list of values; found 'Won'"),
    ("status: {not_in: 5}", "1:18: not_in needs a list of values; found 5"),
    (
        "value: {gt: lots}",
        "1:13: gt needs a number, a date (2026-01-31), a datetime or a date expression "
        "(today-30d); found 'lots'",
    ),
    (
        "value: {lte: [1]}",
        "1:14: lte needs a number, a date (2026-01-31), a datetime or a date expression "
        "(today-30d); found a list",
    ),
    (
        "date_won: {lt: today+7x}",
        "1:16: invalid date expression 'today+7x'; expected today, today+Nd, today-Nd, today+Nw "
        "or today-Nw (no spaces)",
    ),
    (
        "date_won: today + 1d",
        "1:11: invalid date expression 'today + 1d'; expected today, today+Nd, today-Nd, today+Nw "
        "or today-Nw (no spaces)",
    ),
    ("note: {empty: yes}", "1:15: empty needs true or false; found 'yes'"),
    ("note: {changed: 1}", "1:17: changed needs true or false; found 1"),
    (
        "note: {matches: 'a('}",
        "1:17: pattern 'a(' is not a valid regular expression (RE2 syntax): missing ): a(",
    ),
    (
        r"note: {matches: '(a)\1'}",
        r"1:17: pattern '(a)\1' uses a backreference (\1), which dealkeeper's linear-time "
        "matcher (RE2) does not support; write out the text the group would repeat instead",
    ),
    (
        "note: {matches: 'signed(?! not)'}",
        "1:17: pattern 'signed(?! not)' uses a lookahead ((?!), which dealkeeper's linear-time "
        "matcher (RE2) does not support; test each part with a condition of its own (inside "
        "not: for a part that must not match)",
    ),
    (
        "any: [{note: {matches: '(?<=Mr)s'}}]",
        "1:24: pattern '(?<=Mr)s' uses a lookbehind ((?<=), which dealkeeper's linear-time "
        "matcher (RE2) does not support; test each part with a condition of its own (inside "
        "not: for a part that must not match)",
    ),
    ("note: {matches: 5}", "1:17: matches needs a regular expression; found 5"),
    (
        "date_won: {older_than: 90 days}",
        "1:24: older_than needs a duration such as 90d, 12h, 30m or 2w; found '90 days'",
    ),
    (
        "date_won: {newer_than: 90}",
        "1:24: newer_than needs a duration such as 90d, 12h, 30m or 2w; found 90",
    ),
    (
        "note: {contains: null}",
        "1:18: contains needs a value (text, number or true/false); found null",
    ),
    (
        "status: {eq: {a: 1}}",
        "1:14: eq needs a value (text, number, true/false, null or a date expression); found a "
        "mapping",
    ),
    (
        "status: {changed_to: [[a]]}",
        "1:22: changed_to needs a value or a list of values; found a list",
    ),
    (
        "status: [Won, Lost]",
        "1:9: a list after 'status' is ambiguous; write {in: [...]} to test membership or {eq: "
        "[...]} to compare a whole list",
    ),
    ("status: {}", "1:9: 'status' needs at least one operator; found an empty mapping"),
    ("'': 5", "1:1: invalid field name ''; expected a field such as value or custom.NAME"),
    (
        "custom.: 5",
        "1:1: invalid field name 'custom.'; expected a custom field's name or id after custom.",
    ),
    ("any: []", "1:6: any needs a non-empty list of conditions; found an empty list"),
    ("any: [5]", "1:7: a condition must be a mapping such as {status_type: won}; found 5"),
    ("not: won", "1:6: not needs a condition (a mapping) or a list of them; found 'won'"),
    ("[a]: 5", "1:1: keys must be text; found a list"),
    (
        "stauts_type: won",
        "1:1: unknown field 'stauts_type'; did you mean 'status_type'? (expected a Close "
        "opportunity field such as value, status_type or date_won, or custom.NAME)",
    ),
    (
        "next_step: {empty: true}",
        "1:1: unknown field 'next_step'; expected a Close opportunity field such as value, "
        "status_type or date_won, or custom.NAME",
    ),
    (
        "status_type: Won",
        "1:14: status_type is one of active, won, lost; found 'Won'; did you mean 'won'?",
    ),
    (
        "status_type: {changed_to: [won, closed]}",
        "1:27: status_type is one of active, won, lost; found 'closed'",
    ),
    (
        "value_period: {ne: yearly}",
        "1:20: value_period is one of one_time, monthly, annual; found 'yearly'",
    ),
]


@pytest.mark.parametrize(("condition", "expected"), CONDITION_MISTAKES)
def test_loader_reports_condition_mistakes(condition: str, expected: str) -> None:
    """Unknown operators and operands of the wrong kind say what is needed and what was found."""
    then = "    then: [{set: {confidence: 1}}]\n"
    text = f"rules:\n  - name: r\n{then}    if:\n      - {condition}\n"
    line, column, message = expected.split(":", 2)

    assert [f"rules/x.yaml:{int(line) + 4}:{int(column) + 8}:{message}"] == problems_of(text)


ACTION_MISTAKES = [
    ("{}", "1:1: an action needs one of set, unset, add, remove; found an empty mapping"),
    ("5", "1:1: an action needs one of set, unset, add, remove; found 5"),
    (
        "sett: {note: 1}",
        "1:1: unknown action 'sett'; did you mean 'set'? (expected one of set, unset, add, remove)",
    ),
    (
        "set: {}",
        "1:6: set needs a mapping of fields to values such as {confidence: 100}; found an empty "
        "mapping",
    ),
    (
        "set: [a]",
        "1:6: set needs a mapping of fields to values such as {confidence: 100}; found a list",
    ),
    (
        "set: {note: {b: 1}}",
        "1:13: set needs a value or a list of values for 'note'; found a mapping",
    ),
    (
        "set: {confdence: 100}",
        "1:7: unknown field 'confdence'; did you mean 'confidence'? (expected a Close opportunity "
        "field such as value, status_type or date_won, or custom.NAME)",
    ),
    (
        "set: {status_type: won}",
        "1:7: status_type is read-only: Close computes it; set status (a label) or status_id "
        "instead",
    ),
    (
        "unset: [date_created]",
        "1:9: date_created is read-only: Close computes it; write one of lead_id, contact_id, "
        "user_id, status, status_id, pipeline_id, value, value_period, confidence, date_won, "
        "date_lost, note instead",
    ),
    (
        "set: {value_period: Monthly}",
        "1:21: value_period is one of one_time, monthly, annual; found 'Monthly'; did you mean "
        "'monthly'?",
    ),
    (
        "set: {date_won: today+1x}",
        "1:17: invalid date expression 'today+1x'; expected today, today+Nd, today-Nd, today+Nw "
        "or today-Nw (no spaces)",
    ),
    ("set: {status: null}", "1:15: status needs a status label such as Won; found null"),
    (
        "unset: {a: 1}",
        "1:8: unset needs a list of field names (or one field name); found a mapping",
    ),
    ("unset: [a, 5]", "1:8: unset needs a list of field names (or one field name); found a list"),
    ("unset: [status]", "1:9: status cannot be unset; an opportunity always has a status"),
    (
        "add: {tags: vip}",
        "1:7: add only works on multi-value custom fields (custom.NAME); found 'tags'",
    ),
    (
        "remove: {status: Won}",
        "1:10: remove only works on multi-value custom fields (custom.NAME); found 'status'",
    ),
    (
        "add: {custom.Tags: null}",
        "1:20: add needs a value or a list of values, not null, for 'custom.Tags'; found null",
    ),
    (
        "remove: {custom.Tags: []}",
        "1:23: remove needs a value or a list of values, not null, for 'custom.Tags'; found an "
        "empty list",
    ),
    (
        "add: custom.Tags",
        "1:6: add needs a mapping of fields to values such as {custom.Segment: Enterprise}; found "
        "'custom.Tags'",
    ),
    ("set: {'': 1}", "1:7: invalid field name ''; expected a field such as value or custom.NAME"),
    (
        "add: {custom.: a}",
        "1:7: invalid field name 'custom.'; expected a custom field's name or id after custom.",
    ),
]


@pytest.mark.parametrize(("action", "expected"), ACTION_MISTAKES)
def test_loader_reports_action_mistakes(action: str, expected: str) -> None:
    """Malformed actions say which form is expected."""
    text = f"rules:\n  - name: r\n    then:\n      - {action}\n"
    line, column, message = expected.split(":", 2)

    assert [f"rules/x.yaml:{int(line) + 3}:{int(column) + 8}:{message}"] == problems_of(text)


def test_loader_reports_duplicate_rule_names_in_one_file() -> None:
    """The second rule of a name is reported, naming where the first is."""
    text = (
        "rules:\n  - name: a\n    then: [{set: {confidence: 1}}]\n"
        "  - name: a\n    then: [{set: {confidence: 2}}]\n"
    )

    assert [
        "rules/x.yaml:4:5: duplicate rule name 'a'; first defined at rules/x.yaml:2"
    ] == problems_of(text)


def test_loader_reports_duplicate_rule_names_across_files() -> None:
    """Names are unique across every file of a rule set."""
    rule = "rules:\n  - name: a\n    then: [{set: {confidence: 1}}]\n"
    with pytest.raises(InvalidRulesError) as caught:
        load_rule_sources([("rules/a.yaml", rule), ("rules/b.yaml", "\n" + rule)])

    assert "rules/b.yaml:3:5: duplicate rule name 'a'; first defined at rules/a.yaml:2" == str(
        caught.value
    )


def test_loader_collects_every_problem_of_every_file_sorted() -> None:
    """All problems of all files come out at once, ordered by file, line and column."""
    bad = "rules:\n  - name: a\n    then: [{sett: {x: 1}}]\n    thne: 1\n"
    with pytest.raises(InvalidRulesError) as caught:
        load_rule_sources([("rules/b.yaml", bad), ("rules/a.yaml", "rules: 5\n")])

    assert [
        "rules/a.yaml:1:8: rules must be a list of rules; found 5",
        "rules/b.yaml:3:13: unknown action 'sett'; did you mean 'set'? (expected one of set, "
        "unset, add, remove)",
        "rules/b.yaml:4:5: unknown key 'thne'; did you mean 'then'? (expected one of name, "
        "description, trigger, on, timezone, enabled, dry_run, schedule, find, if, then)",
    ] == [str(p) for p in caught.value.problems]


def test_loader_rejects_the_whole_set_when_one_file_is_wrong() -> None:
    """A good file does not load on its own when another one has a mistake."""
    good = "rules:\n  - name: a\n    then: [{set: {confidence: 1}}]\n"
    with pytest.raises(InvalidRulesError):
        load_rule_sources([("rules/a.yaml", good), ("rules/b.yaml", "rules: [\n")])


@pytest.mark.parametrize("fixture", sorted(INVALID.glob("*.yaml")), ids=lambda p: p.name)
def test_loader_invalid_fixtures_match_their_golden_output(fixture: Path) -> None:
    """Each invalid fixture produces exactly the messages in its .expected.txt."""
    expected = fixture.with_suffix(".expected.txt").read_text(encoding="utf-8")
    with pytest.raises(InvalidRulesError) as caught:
        load_rules(fixture.read_text(encoding="utf-8"), f"rules/{fixture.name}")

    assert expected == str(caught.value) + "\n"


def test_loader_five_mistakes_fixture_reports_each_kind() -> None:
    """The golden five-mistakes file has at least five different kinds of mistake."""
    with pytest.raises(InvalidRulesError) as caught:
        load_rules((INVALID / "five-mistakes.yaml").read_text(encoding="utf-8"), "rules/f.yaml")
    kinds = {p.message.split("'")[0] for p in caught.value.problems}

    assert len(kinds) >= 5


def test_loader_digest_is_twelve_hex_of_the_sources() -> None:
    """The digest changes with the text or the name and stays put otherwise."""
    text = "rules: []\n"
    first = load_rules(text, "rules/a.yaml").digest

    assert 12 == len(first)
    assert first == load_rules(text, "rules/a.yaml").digest
    assert first != load_rules(text + "\n", "rules/a.yaml").digest
    assert first != load_rules(text, "rules/b.yaml").digest


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_loader_path_reads_a_folders_rule_files_in_name_order(tmp_path: Path) -> None:
    """Top-level *.yaml and *.yml files load in name order; tests and subfolders are skipped."""
    for name in ("b.yml", "a.yaml", "c.txt", "a.test.yaml", "b.test.yml"):
        write(tmp_path, name, f"rules:\n  - name: {name}\n    then: [{{set: {{confidence: 1}}}}]\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "d.yaml", "rules: [\n")

    ruleset = load_rules_path(tmp_path)

    assert ["a.yaml", "b.yml"] == [r.name for r in ruleset.rules]
    assert (
        os.path.join(str(tmp_path), "a.yaml"),
        os.path.join(str(tmp_path), "b.yml"),
    ) == ruleset.files


def test_loader_path_reads_a_single_file(tmp_path: Path) -> None:
    """A file path loads that file, named as given."""
    write(tmp_path, "one.yaml", "rules: []\n")
    path = str(tmp_path / "one.yaml")

    assert RuleSet(files=(path,), digest=load_rules("rules: []\n", path).digest) == load_rules_path(
        path
    )


def test_loader_path_names_problems_by_the_path_given(tmp_path: Path) -> None:
    """Problems in a folder's file carry the folder as given joined with the file name."""
    write(tmp_path, "deal-hygiene.yaml", "rules: 5\n")
    with pytest.raises(InvalidRulesError) as caught:
        load_rules_path(str(tmp_path))

    assert [os.path.join(str(tmp_path), "deal-hygiene.yaml")] == [
        p.file for p in caught.value.problems
    ]


def test_loader_path_reports_a_missing_path(tmp_path: Path) -> None:
    """A path that does not exist is one problem at line 1, column 1."""
    missing = str(tmp_path / "nope")
    with pytest.raises(InvalidRulesError) as caught:
        load_rules_path(missing)

    assert (
        f"{missing}:1:1: no such file or folder; expected a rules file or a folder of *.yaml rule "
        f"files" == str(caught.value)
    )


def test_loader_path_reports_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Undecodable bytes are a problem, not a crash."""
    (tmp_path / "bad.yaml").write_bytes(b"rules: [\xff]\n")
    with pytest.raises(InvalidRulesError) as caught:
        load_rules_path(tmp_path)

    assert [(os.path.join(str(tmp_path), "bad.yaml"), 1, 1)] == [
        (p.file, p.line, p.column) for p in caught.value.problems
    ]


def test_loader_leaves_pyyamls_safe_loader_alone() -> None:
    """Loading rules does not change how yaml.safe_load reads yes/no elsewhere."""
    import yaml

    load_rules(rule_text("    then: [{set: {note: yes}}]\n"), FILE)

    assert {"a": True} == yaml.safe_load("a: yes")
