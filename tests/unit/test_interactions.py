"""Warnings about rules that work against each other: conflicting writes and ping-pong."""

from __future__ import annotations

import pytest

from service.authoring.interactions import find_interactions
from service.core.rules import load_rules, load_rules_path
from tests.conftest import RULES_DIR

FILE = "rules/t.yaml"


def warnings_of(text: str) -> list[str]:
    return [str(w) for w in find_interactions(load_rules(text, FILE))]


def test_interactions_two_rules_writing_different_values_warn_at_the_later() -> None:
    """Both rules and both lines are named; the later rule wins, and the warning says so."""
    text = (
        "rules:\n"
        "  - name: big\n    if: [{value: {gte: 100}}]\n    then: [{set: {confidence: 90}}]\n"
        "  - name: stale\n    if: [{date_won: {empty: true}}]\n"
        "    then: [{set: {confidence: 10}}]\n"
    )

    assert [
        "rules/t.yaml:7:19: warning: rules 'big' (rules/t.yaml:4) and 'stale' both write "
        "confidence, with 90 and 10; when both fire, 'stale' (the later one) wins"
    ] == warnings_of(text)


def test_interactions_same_value_is_no_conflict() -> None:
    """Two rules writing the same value agree: no warning."""
    text = (
        "rules:\n"
        "  - name: a\n    then: [{set: {confidence: 100}}]\n"
        "  - name: b\n    then: [{set: {confidence: 100}}]\n"
    )

    assert [] == warnings_of(text)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("status_type: won", "status_type: lost"),
        ("status_type: {changed_to: won}", "status_type: {in: [lost, active]}"),
        ("value: {gte: 5000}", "value: {lt: 5000}"),
        ("note: {empty: true}", "note: {empty: false}"),
        ("status: Won", "status_label: {ne: Won}"),
        ("status_type: {changed_from: won, changed_to: active}", "status_type: won"),
    ],
)
def test_interactions_rules_that_cannot_fire_together_do_not_warn(first: str, second: str) -> None:
    """Conditions pinning one field to values that exclude each other silence the warning."""
    text = (
        "rules:\n"
        f"  - name: a\n    if: [{{{first}}}]\n    then: [{{set: {{confidence: 100}}}}]\n"
        f"  - name: b\n    if: [{{{second}}}]\n    then: [{{set: {{confidence: 0}}}}]\n"
    )

    assert [] == warnings_of(text)


def test_interactions_disjoint_triggers_do_not_warn() -> None:
    """A created-only rule and an updated-only rule never see the same event."""
    text = (
        "rules:\n"
        "  - name: a\n    trigger: opportunity.created\n    then: [{set: {confidence: 1}}]\n"
        "  - name: b\n    trigger: opportunity.deleted\n    then: [{set: {confidence: 2}}]\n"
    )

    assert [] == warnings_of(text)


def test_interactions_disabled_rules_are_left_out() -> None:
    """A disabled rule cannot conflict with anything."""
    text = (
        "rules:\n"
        "  - name: a\n    then: [{set: {confidence: 1}}]\n"
        "  - name: b\n    enabled: false\n    then: [{set: {confidence: 2}}]\n"
    )

    assert [] == warnings_of(text)


def test_interactions_dry_run_rules_meet_only_each_other() -> None:
    """A dry-run rule's parts never meet a live rule's in a write, and it feeds no one."""
    text = (
        "rules:\n"
        "  - name: live\n    if: [{confidence: 5}]\n    then: [{set: {confidence: 1}}]\n"
        "  - name: trial\n    dry_run: true\n    then: [{set: {confidence: 5}}]\n"
    )

    assert [] == warnings_of(text)


def test_interactions_add_against_remove_of_one_value_conflicts() -> None:
    """One rule adding what another removes is a conflict; adding different values is not."""
    text = (
        "rules:\n"
        "  - name: a\n    then: [{add: {custom.Tags: vip}}]\n"
        "  - name: b\n    then: [{remove: {custom.Tags: vip}, add: {custom.Tags: new}}]\n"
    )

    assert [
        "rules/t.yaml:5:22: warning: rules 'a' (rules/t.yaml:3) and 'b' both write custom.Tags, "
        'with +"vip" and -"vip"; when both fire, \'b\' (the later one) wins'
    ] == warnings_of(text)


def test_interactions_write_that_satisfies_another_rules_condition_is_a_ping_pong_risk() -> None:
    """The writing rule's action line and the other rule's condition line are both named."""
    text = (
        "rules:\n"
        "  - name: close-won\n    if: [{value: {gte: 100}}]\n    then: [{set: {status: Won}}]\n"
        "  - name: thank\n    if: [{status: {changed_to: Won}}]\n"
        "    then: [{set: {note: thanks}}]\n"
    )

    assert [
        "rules/t.yaml:4:19: warning: rule 'close-won' writes status = \"Won\", which can satisfy "
        "the condition status changed_to \"Won\" of rule 'thank' (rules/t.yaml:6): a ping-pong "
        "risk; dealkeeper ignores the event its own write causes, so 'thank' will not fire from it"
    ] == warnings_of(text)


@pytest.mark.parametrize(
    ("action", "condition"),
    [
        ("set: {confidence: 50}", "confidence: {gt: 90}"),
        ("add: {custom.Tags: a}", "custom.Tags: {contains: b}"),
        ("remove: {custom.Tags: a}", "custom.Tags: {contains: a}"),
        ("set: {confidence: 50}", "confidence: {changed: false}"),
    ],
)
def test_interactions_write_that_cannot_satisfy_the_condition_is_quiet(
    action: str, condition: str
) -> None:
    """A written value the other rule's test rejects is no ping-pong risk."""
    text = (
        "rules:\n"
        f"  - name: a\n    then: [{{{action}}}]\n"
        f"  - name: b\n    if: [{{{condition}}}]\n    then: [{{set: {{note: x}}}}]\n"
    )

    assert [] == warnings_of(text)


def test_interactions_ping_pong_needs_the_reader_to_run_on_updates() -> None:
    """A rule that only runs on created events never sees the update a write causes."""
    text = (
        "rules:\n"
        "  - name: a\n    then: [{set: {confidence: 50}}]\n"
        "  - name: b\n    trigger: opportunity.created\n    if: [{confidence: 50}]\n"
        "    then: [{set: {note: x}}]\n"
    )

    assert [] == warnings_of(text)


def test_interactions_shipped_rules_are_quiet() -> None:
    """The rules that ship produce no warning."""
    assert [] == find_interactions(load_rules_path(RULES_DIR))
