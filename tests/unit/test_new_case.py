"""A real event as a rule test case (`test --add-case`), the pure part: personal data
scrubbed, today's plan as the expectation, the case appended as text that loads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.authoring.anonymize import scrub_event
from service.authoring.newcase import (
    AddCaseError,
    appended,
    check_case,
    default_test_file,
    new_case,
    parse_expect,
)
from service.core.rules import load_cases, load_rule_sources
from service.core.rules.model import CustomField, Metadata, Status

HYGIENE = (
    "rules/hygiene.yaml",
    "timezone: America/New_York\n"
    "rules:\n"
    "  - name: stamp-date-won\n"
    "    if: [{status_type: {changed_to: won}}]\n"
    "    then: [{set: {date_won: today}}]\n"
    "  - name: vip\n"
    "    trigger: opportunity.updated\n"
    "    if: [{lead_name: {matches: '^Acme'}}]\n"
    "    then: [{add: {custom.Segment: Enterprise}}]\n",
)
OTHER = (
    "rules/other.yaml",
    "rules:\n  - name: confident\n    if: [{status_type: won}]\n"
    "    then: [{set: {confidence: 100}}]\n",
)
RULES = load_rule_sources([HYGIENE])
METADATA = Metadata(
    statuses=(
        Status("stat_a", "Active", "active", "pipe_1"),
        Status("stat_w", "Won", "won", "pipe_1"),
    ),
    custom_fields=(
        CustomField("cf_seg", "Segment", "choices", True, ("SMB", "Enterprise")),
        CustomField("cf_txt", "Buying notes", "text"),
        CustomField("cf_unused", "Unused", "number"),
    ),
)


def won(**data: Any) -> dict[str, Any]:
    """Close's event of a deal moved to Won at 03:30 UTC (22:30 the day before in New York)."""
    return {
        "id": "ev_1",
        "object_type": "opportunity",
        "action": "updated",
        "object_id": "oppo_1",
        "date_created": "2026-11-28T03:30:00",
        "date_updated": "2026-11-28T03:30:00",
        "changed_fields": ["status_id", "status_label", "status_type"],
        "previous_data": {"status_type": "active", "note": data.get("note", "")},
        "data": {"id": "oppo_1", "status_type": "won", "pipeline_id": "pipe_1", **data},
        "meta": {"request_path": "/api/v1/opportunity/oppo_1/"},
        "organization_id": "orga_1",
    }


def test_scrub_replaces_personal_text_and_keeps_ids_numbers_dates_and_choices() -> None:
    raw = won(
        lead_id="lead_9",
        lead_name="Acme GmbH",
        contact_name="Jane Roe",
        note="Jane Roe, +49 30 1234567",
        value=5000,
        date_won="2026-11-27",
        status_label="Won",
        **{
            "custom.cf_seg": ["SMB"],
            "custom.cf_txt": "jane@acme.example",
            "custom.cf_gone": "free text",
            "contact": {"emails": [{"email": "jane@acme.example"}], "phone": "030 1234567"},
            "empty_note": "",
        },
    )
    raw["previous_data"]["contact_name"] = "Jane Roe"

    scrubbed, replaced = scrub_event(raw, METADATA)

    assert {
        "id": "oppo_1",
        "status_type": "won",
        "pipeline_id": "pipe_1",
        "lead_id": "lead_9",
        "lead_name": "lead_name 1",
        "contact_name": "contact_name 2",
        "note": "note 3",
        "value": 5000,
        "date_won": "2026-11-27",
        "status_label": "Won",
        "custom.cf_seg": ["SMB"],
        "custom.cf_txt": "person4@example.com",
        "custom.cf_gone": "custom.cf_gone 5",
        "contact": {"emails": [{"email": "person4@example.com"}], "phone": "+1 555 0106"},
        "empty_note": "",
    } == scrubbed["data"]
    # One text, one placeholder: the note and the contact did not change, and still did not.
    assert {"status_type": "active", "note": "note 3", "contact_name": "contact_name 2"} == (
        scrubbed["previous_data"]
    )
    assert {
        "lead_name", "contact_name", "note", "custom.Buying notes", "custom.cf_gone", "email",
        "phone",
    } == replaced  # fmt: skip


def test_the_case_expects_todays_plan_and_keeps_only_the_metadata_it_needs() -> None:
    case = new_case(RULES, won(lead_name="Beta"), metadata=METADATA)

    assert "ev_1: opportunity.updated of oppo_1" == case.name
    assert {"fired": ["stamp-date-won"], "update": {"date_won": "2026-11-27"}} == case.expect
    assert case.metadata is not None
    assert ["cf_seg"] == [f.id for f in case.metadata.custom_fields]
    assert ["stat_a", "stat_w"] == [s.id for s in case.metadata.statuses]
    assert not case.scrub_changed_plan
    assert "meta" not in case.event and "organization_id" not in case.event


def test_the_case_keeps_the_custom_fields_a_date_of_reads() -> None:
    """`date_of(custom.Closed on, ...)` names a field the event does not carry: the case
    still knows it, and nothing more."""
    closed = CustomField("cf_closed", "Closed on", "date")
    metadata = Metadata(custom_fields=(*METADATA.custom_fields, closed))
    rules = load_rule_sources(
        [
            (
                "rules/d.yaml",
                "rules:\n  - name: d\n    if: [{status_type: {changed_to: won}}]\n"
                "    then: [{set: {date_won: 'date_of(custom.Closed on, date_updated)'}}]\n",
            )
        ]
    )

    case = new_case(rules, won(date_updated="2026-11-27T12:00:00"), metadata=metadata)

    assert case.metadata is not None
    assert ["cf_closed"] == [f.id for f in case.metadata.custom_fields]
    assert {"fired": ["d"], "update": {"date_won": "2026-11-27"}} == case.expect


def test_a_rule_reading_a_replaced_text_is_told() -> None:
    """`vip` matches the real lead name, not its placeholder: the case pins the placeholder's
    plan, and says that differs from the real event's."""
    case = new_case(RULES, won(lead_name="Acme GmbH"), metadata=METADATA)

    assert (["stamp-date-won"], True) == (case.expect["fired"], case.scrub_changed_plan)


def test_an_event_no_rule_triggers_on_is_refused() -> None:
    raw = {**won(), "action": "deleted"}

    with pytest.raises(
        AddCaseError, match=r"no rule triggers on opportunity.deleted \(event ev_1\)"
    ):
        new_case(RULES, raw, metadata=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no-update", {"no_update": True}),
        ("update: {confidence: 100}", {"update": {"confidence": 100}}),
        ("{fired: [a], no_update: true}", {"fired": ["a"], "no_update": True}),
        ("update: {choice: no}", {"update": {"choice": "no"}}),  # YAML 1.2: "no" is text
    ],
)
def test_expect_takes_no_update_or_a_cases_expect_keys(text: str, expected: Any) -> None:
    assert expected == parse_expect(text)


@pytest.mark.parametrize("text", ["updates: {a: 1}", "[no_update]", "", "fired: [a", "nothing"])
def test_a_bad_expect_says_what_it_takes(text: str) -> None:
    with pytest.raises(AddCaseError, match="--expect needs no-update or a YAML mapping of"):
        parse_expect(text)


EXISTING = (
    "# Cases for the hygiene rules.\n"
    "metadata: {statuses: []}   # the file's own\n"
    "tests:\n"
    "- name: first\n"
    "  event: {action: created, date_created: '2026-01-01T00:00:00Z'}\n"
    "  expect: {no_update: true}  # a comment that must stay\n"
    "# the end"
)


def test_a_case_is_appended_after_the_last_one_with_the_files_text_untouched() -> None:
    case = new_case(RULES, won(), metadata=METADATA)

    text = appended(EXISTING, case, file="rules/hygiene.test.yaml", note="added")

    assert text.startswith(EXISTING + "\n")
    assert "\n# added\n- name: 'ev_1: opportunity.updated of oppo_1'\n" in text
    assert ["first", case.name] == [c.name for c in load_cases(text, "rules/hygiene.test.yaml")]
    assert [] == check_case(text, "rules/hygiene.test.yaml", RULES, case.name)


def test_texts_a_yaml_1_2_reader_would_take_for_numbers_stay_texts() -> None:
    """Choices are kept as Close sent them; written plain, `0o17` and `1e3` would load back
    as numbers, and `no` stays text either way."""
    raw = won(**{"custom.cf_seg": ["0o17", "1e3", "no"]})
    case = new_case(RULES, raw, metadata=METADATA)

    text = appended(None, case, file="rules/cases.test.yaml")

    loaded = load_cases(text, "rules/cases.test.yaml")[0]
    assert ["0o17", "1e3", "no"] == loaded.event.data["custom.cf_seg"]


def test_a_new_file_holds_the_case_alone() -> None:
    case = new_case(RULES, won(), metadata=None)

    text = appended(None, case, file="rules/cases.test.yaml")

    assert [case.name] == [c.name for c in load_cases(text, "rules/cases.test.yaml")]
    assert [] == check_case(text, "rules/cases.test.yaml", RULES, case.name)


@pytest.mark.parametrize("existing", ["", "# cases for later\n", "# no newline"])
def test_an_empty_file_gets_a_tests_list_after_what_it_holds(existing: str) -> None:
    case = new_case(RULES, won(), metadata=None)

    text = appended(existing, case, file="rules/x.test.yaml")

    assert text.startswith(existing)
    assert [case.name] == [c.name for c in load_cases(text, "rules/x.test.yaml")]


def test_given_a_rules_file_the_case_goes_beside_it(tmp_path: Path) -> None:
    rules_file = tmp_path / "hygiene.yaml"
    rules_file.write_text(HYGIENE[1], encoding="utf-8")
    case = new_case(RULES, won(), metadata=None)

    assert str(tmp_path / "hygiene.test.yaml") == default_test_file(str(rules_file), RULES, case)


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        (EXISTING.replace("name: first", "name: 'ev_1: opportunity.updated of oppo_1'"),
         "already has a case named 'ev_1: opportunity.updated of oppo_1' \\(this event was "
         "added before\\); give another name with --name"),
        ("tests: []\n", "its tests are not a block list of cases"),
        (EXISTING.replace("metadata: {statuses: []}   # the file's own\n", "") + "\nmetadata: {}\n",
         "the case would not come last in its tests list"),
        ("tests: [\n", "does not load as a test file"),
    ],
)  # fmt: skip
def test_what_cannot_be_appended_to_is_refused(existing: str, message: str) -> None:
    case = new_case(RULES, won(), metadata=METADATA)

    with pytest.raises(AddCaseError, match=message):
        appended(existing, case, file="rules/x.test.yaml")


@pytest.mark.parametrize(
    ("path", "sources", "raw", "expected"),
    [
        ("rules", [HYGIENE, OTHER], won(), "rules/cases.test.yaml"),  # two files fired
        ("rules", [HYGIENE, OTHER], won(status_type="active"), "rules/cases.test.yaml"),
        ("rules", [HYGIENE], won(), "rules/hygiene.test.yaml"),
        (
            "rules",
            [HYGIENE, OTHER],
            {**won(), "changed_fields": [], "previous_data": {}},
            "rules/other.test.yaml",
        ),
    ],
)
def test_the_default_file_is_beside_the_rules_that_fired(
    path: str, sources: list[tuple[str, str]], raw: dict[str, Any], expected: str
) -> None:
    ruleset = load_rule_sources(sources)
    case = new_case(ruleset, raw, metadata=None)

    assert expected == default_test_file(path, ruleset, case)
