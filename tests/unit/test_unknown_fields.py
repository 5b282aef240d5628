"""The names rules use that Close's metadata lacks, per rule, with what Close has instead."""

from __future__ import annotations

from service.core.rules import load_rules
from service.core.rules.model import CustomField, Metadata, Status
from service.core.rules.unknown import UnknownField, unknown_fields

RULES = load_rules(
    """\
timezone: UTC
rules:
  - name: tag
    if:
      - custom.Segment: {not_contains: Enterprise}
      - status: {in: [Active, Qualified]}
    then:
      - add: {custom.Segment: Enterprise}
      - set: {custom.cf_gone: x}
  - name: onboard
    then:
      - set: {status: Onboarding}
  - name: off
    enabled: false
    then:
      - set: {custom.Nowhere: x}
""",
    "rules/r.yaml",
)
METADATA = Metadata(
    statuses=(Status("stat_1", "Active", "active"), Status("stat_2", "Onboarded", "active")),
    custom_fields=(CustomField("cf_1", "Segments", "text"),),
)


def test_unknown_fields_names_each_rule_and_field_with_a_guess() -> None:
    found = unknown_fields(RULES, METADATA)

    assert [
        ("onboard", "status: Onboarding"),
        ("tag", "custom.Segment"),
        ("tag", "custom.cf_gone"),
        ("tag", "status: Qualified"),
    ] == [(e.rule, e.field) for e in found]
    assert "did you mean 'Segments'?" in found[1].reason
    assert "did you mean 'Onboarded'?" in found[0].reason


def test_unknown_fields_none_offline_or_when_all_are_known() -> None:
    known = Metadata(
        statuses=(
            Status("s1", "Active", "active"),
            Status("s2", "Qualified", "active"),
            Status("s3", "Onboarding", "active"),
        ),
        custom_fields=(CustomField("cf_1", "Segment", "text"), CustomField("cf_gone", "G", "text")),
    )

    assert () == unknown_fields(RULES, None)
    assert () == unknown_fields(RULES, known)


def test_unknown_field_round_trips_and_refuses_what_is_not_one() -> None:
    entry = UnknownField("r", "custom.X", "why")

    assert entry == UnknownField.from_dict(entry.to_dict())
    assert UnknownField.from_dict({"rule": "r", "field": 1, "reason": "x"}) is None
    assert UnknownField.from_dict(["r"]) is None
