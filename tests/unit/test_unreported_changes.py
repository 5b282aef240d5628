"""The warning for rules that wait on a custom-field change Close may never report."""

from __future__ import annotations

import pytest

from service.authoring.unreported import find_unreported_changes
from service.core.rules import load_rules

FILE = "rules/t.yaml"


def warnings_of(condition: str, *, trigger: str = "opportunity.updated") -> list[str]:
    text = (
        f"rules:\n  - name: r\n    trigger: {trigger}\n    if: [{condition}]\n"
        "    then: [{set: {confidence: 90}}]\n"
    )
    return [str(w) for w in find_unreported_changes(load_rules(text, FILE))]


@pytest.mark.parametrize(
    "condition",
    [
        "{custom.Segment: {changed: true}}",
        "{custom.cf_abc: {changed_from: SMB}}",
        "{custom.Segment: {changed_to: Enterprise}, value: {gte: 100}}",
        "{any: [{custom.A: {changed: true}}, {custom.B: {changed_to: x}}]}",
        "{not: {custom.Segment: {changed: false}}}",
        "{status_type: {changed_to: won}}, {custom.Segment: {changed: true}}",
    ],
)
def test_unreported_rule_that_needs_a_custom_change_warns(condition: str) -> None:
    """Whenever the rule cannot hold on an update unless a custom field is reported changed."""
    [warning] = warnings_of(condition)

    assert "warning: rule 'r' fires on opportunity.updated only when Close reports" in warning


@pytest.mark.parametrize(
    "condition",
    [
        "{custom.Segment: Enterprise}",
        "{custom.Segment: {changed: false}}",
        "{not: {custom.Segment: {changed: true}}}",
        "{any: [{custom.Segment: {changed: true}}, {value: {changed: true}}]}",
        "{any: [{custom.Segment: {changed: true}}, {value: {gte: 100}}]}",
        "{status_type: {changed_to: won}}",
    ],
)
def test_unreported_rule_that_can_fire_without_a_custom_change_is_left_alone(
    condition: str,
) -> None:
    """A rule that can fire on an update that reports no custom field needs no warning."""
    assert [] == warnings_of(condition)


def test_unreported_created_only_rule_is_left_alone() -> None:
    """On a created event every field counts as changed from null: Close reports it all."""
    assert [] == warnings_of(
        "{custom.Segment: {changed_to: Enterprise}}", trigger="opportunity.created"
    )


def test_unreported_warning_points_at_the_first_custom_change_condition() -> None:
    """The position is the condition's, and every custom change condition is named."""
    [warning] = warnings_of(
        "{value: {gte: 5}}, {custom.A: {changed: true}}, {custom.B: {changed_from: [x, y]}}"
    )

    assert warning.startswith(
        "rules/t.yaml:4:30: warning: rule 'r' fires on opportunity.updated only when Close "
        'reports a custom field as changed (custom.A changed true; custom.B changed_from ["x", '
        '"y"]), '
    )


def test_unreported_disabled_rule_is_left_alone() -> None:
    """A rule turned off fires on nothing, so it waits on nothing."""
    text = (
        "rules:\n  - name: r\n    enabled: false\n"
        "    if: [{custom.Segment: {changed: true}}]\n    then: [{set: {confidence: 90}}]\n"
    )

    assert [] == find_unreported_changes(load_rules(text, FILE))
