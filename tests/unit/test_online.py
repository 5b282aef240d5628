"""validate --online's checks: custom fields, choices, statuses and multi-value fields."""

from __future__ import annotations

import pytest

from service.authoring.online import check_against_close
from service.core.rules import load_rules
from tests.unit.rules_support import METADATA

FILE = "rules/t.yaml"


def problems_of(condition: str, then: str = "[{set: {confidence: 1}}]") -> list[str]:
    text = f"rules:\n  - name: r\n    if: [{condition}]\n    then: {then}\n"
    return [str(p) for p in check_against_close(load_rules(text, FILE), METADATA)]


def test_online_known_names_and_values_pass() -> None:
    """Fields, choices and labels Close has raise nothing, by name or by id."""
    assert [] == problems_of(
        "{custom.Segment: {in: [SMB, Enterprise]}}, {custom.cf_src: web}, {status: Won}",
        "[{add: {custom.Segment: 'No'}}, {set: {status: Active, custom.Source: x}}]",
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "{custom.Segmnt: SMB}",
            "rules/t.yaml:3:11: Close has no opportunity custom field named 'Segmnt'; did you "
            "mean 'Segment'?",
        ),
        (
            "{custom.Zone: SMB}",
            "rules/t.yaml:3:11: Close has no opportunity custom field named 'Zone'; it has "
            "Segment, Source, Renewal date",
        ),
        (
            "{custom.Segment: {contains: Entreprise}}",
            "rules/t.yaml:3:11: 'Entreprise' is not a choice of custom field 'Segment' in Close; "
            "did you mean 'Enterprise'?",
        ),
        (
            "{status: {changed_to: Wonn}}",
            "rules/t.yaml:3:11: 'Wonn' is not a status label in Close; did you mean 'Won'?",
        ),
        (
            "{status_label: Closed}",
            "rules/t.yaml:3:11: 'Closed' is not a status label in Close; Close has Active, Won",
        ),
        (
            "{status_id: stat_nope}",
            "rules/t.yaml:3:11: 'stat_nope' is not a status id in Close; Close has stat_active_a, "
            "stat_won_a, stat_active_b, stat_won_b",
        ),
    ],
)
def test_online_conditions_name_what_close_lacks(condition: str, expected: str) -> None:
    """Unknown fields, choices and labels in conditions are problems, with a suggestion."""
    assert [expected] == problems_of(condition)


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        (
            "[{add: {custom.Source: web}}]",
            "rules/t.yaml:4:19: custom field 'Source' holds one value, so add cannot be used; "
            "write set: {custom.Source: ...} instead",
        ),
        (
            "[{set: {custom.Source: [a, b]}}]",
            "rules/t.yaml:4:19: custom field 'Source' holds one value; found a list for set",
        ),
        (
            "[{set: {status: Wonn}}]",
            "rules/t.yaml:4:19: 'Wonn' is not a status label in Close; did you mean 'Won'?",
        ),
        (
            "[{remove: {custom.Segment: smb}}]",
            "rules/t.yaml:4:22: 'smb' is not a choice of custom field 'Segment' in Close; did you "
            "mean 'SMB'?",
        ),
    ],
)
def test_online_actions_name_what_close_lacks(then: str, expected: str) -> None:
    """Writes to single-value fields with add/remove, lists, and unknown values are problems."""
    assert [expected] == problems_of("{value: 1}", then)


def test_online_dates_and_templates_are_not_choices() -> None:
    """Computed values (today, templates) are not checked against choices."""
    assert [] == problems_of("{value: 1}", "[{set: {custom.Renewal date: today+7d}}]")
