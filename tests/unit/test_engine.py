"""make_plan: which rules fire, the one update they make, and why others did not."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.events import Event
from service.core.rules import Metadata, Plan, RuleSet, load_rules, make_plan
from service.core.rules.model import Conflict, Dropped
from tests.unit.rules_support import METADATA, make_event

# The rule file of DESIGN.md, verbatim: its examples are normative. (The shipped copy in
# rules/ is checked against it in tests/test_shipped_rules.py.)
DESIGN_RULES = """\
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


def ruleset(text: str) -> RuleSet:
    return load_rules(text, "rules/t.yaml")


def one_rule(then: str, *, condition: str = "", extra: str = "") -> RuleSet:
    """A file with one rule `r` doing `then` (an action list in flow style)."""
    if_part = f"    if: {condition}\n" if condition else ""
    return ruleset(f"rules:\n  - name: r\n{extra}{if_part}    then: {then}\n")


def plan(rules: RuleSet, event: Event, metadata: Metadata | None = None, **kwargs: Any) -> Plan:
    return make_plan(rules, event, metadata=metadata, **kwargs)


def won_event(date_created: str, **data: Any) -> Event:
    """A move from active to won, as Close reports it."""
    return make_event(
        "updated",
        date_created=date_created,
        changed_fields=["status_id", "status_label", "status_type"],
        previous_data={"status_type": "active", "status_label": "Active"},
        data={
            "id": "oppo_1",
            "status_type": "won",
            "status_label": "Won",
            "confidence": 100,
            **data,
        },
    )


# --- the design's three rules ------------------------------------------------------------


def test_engine_design_stamp_date_won_uses_new_yorks_date() -> None:
    """Won at 22:30 in New York (03:30 UTC next day) stamps the 27th with x-tz-offset -5."""
    result = plan(ruleset(DESIGN_RULES), won_event("2026-11-28T03:30:00", date_won="2026-11-28"))

    assert (("stamp-date-won",), {"date_won": "2026-11-27"}, -5.0) == (
        result.fired,
        result.update,
        result.tz_offset_hours,
    )


def test_engine_design_tag_big_deals_fires_without_a_segment() -> None:
    """A big deal with no Segment at all gets Enterprise added (not_contains holds on null)."""
    event = make_event(data={"value": 1000000, "status_type": "active"}, changed_fields=["value"])

    result = plan(ruleset(DESIGN_RULES), event)

    assert (("tag-big-deals",), {"custom.Segment.add": "Enterprise"}) == (
        result.fired,
        result.update,
    )


def test_engine_design_tag_big_deals_resolves_the_segment_id() -> None:
    """With Close's metadata the add goes to the field's id."""
    event = make_event(data={"value": 2000000, "custom.cf_seg": ["SMB"]}, changed_fields=["value"])

    assert {"custom.cf_seg.add": "Enterprise"} == plan(
        ruleset(DESIGN_RULES), event, METADATA
    ).update


def test_engine_design_tag_big_deals_skips_small_and_tagged_deals() -> None:
    """Small deals and deals already tagged Enterprise are left alone, with reasons."""
    rules = ruleset(DESIGN_RULES)
    small = plan(rules, make_event(data={"value": 5000}))
    tagged = plan(rules, make_event(data={"value": 2000000, "custom.Segment": ["Enterprise"]}))

    assert [
        "value 5000 gte 1000000 is false (rules/t.yaml:16:9)",
        'custom.Segment ["Enterprise"] not_contains "Enterprise" is false (rules/t.yaml:17:9)',
    ] == [small.reasons_not_fired["tag-big-deals"], tagged.reasons_not_fired["tag-big-deals"]]


def test_engine_design_tag_big_deals_only_on_updates() -> None:
    """tag-big-deals names opportunity.updated only, so a created deal is not tagged."""
    result = plan(ruleset(DESIGN_RULES), make_event("created", data={"value": 2000000}))

    assert (
        "trigger opportunity.created not in [opportunity.updated]"
        == result.reasons_not_fired["tag-big-deals"]
    )


def test_engine_design_full_confidence_when_won() -> None:
    """A won deal below 100 confidence is raised to 100, whatever changed."""
    event = make_event(
        data={"status_type": "won", "confidence": 90}, changed_fields=["value"], previous_data={}
    )

    result = plan(ruleset(DESIGN_RULES), event)

    assert (("full-confidence-when-won",), {"confidence": 100}) == (result.fired, result.update)


def test_engine_design_rules_merge_into_one_update() -> None:
    """A deal created won below full confidence gets both writes in one update."""
    event = make_event(
        "created",
        date_created="2026-06-01T16:00:00Z",
        data={"status_type": "won", "status_label": "Won", "confidence": 50},
    )

    result = plan(ruleset(DESIGN_RULES), event)

    assert (
        ("stamp-date-won", "full-confidence-when-won"),
        {"date_won": "2026-06-01", "confidence": 100},
        -4.0,
    ) == (result.fired, result.update, result.tz_offset_hours)


# --- time zones --------------------------------------------------------------------------

STAMP = "[{set: {date_won: today}}]"


@pytest.mark.parametrize(
    ("moment", "day", "offset"),
    [
        ("2026-03-08T06:30:00Z", "2026-03-08", -5.0),  # 01:30 EST, before the spring change
        ("2026-03-08T07:30:00Z", "2026-03-08", -4.0),  # 03:30 EDT, after it
        ("2026-03-08T04:59:00Z", "2026-03-07", -5.0),  # 23:59 EST the evening before
        ("2026-11-01T03:30:00Z", "2026-10-31", -4.0),  # 23:30 EDT on the 31st
        ("2026-11-01T05:30:00Z", "2026-11-01", -4.0),  # 01:30 EDT, the first 01:30
        ("2026-11-01T06:30:00Z", "2026-11-01", -5.0),  # 01:30 EST, the second 01:30
    ],
)
def test_engine_new_york_dst_change_days(moment: str, day: str, offset: float) -> None:
    """Around both 2026 DST changes the date and x-tz-offset follow New York's clock."""
    rules = one_rule(STAMP, extra="    timezone: America/New_York\n")

    result = plan(rules, make_event(date_created=moment))

    assert ({"date_won": day}, offset) == (result.update, result.tz_offset_hours)


@pytest.mark.parametrize(
    ("tz", "moment", "day", "offset"),
    [
        ("Asia/Kolkata", "2026-11-27T18:29:00Z", "2026-11-27", 5.5),  # 23:59 IST
        ("Asia/Kolkata", "2026-11-27T18:30:00Z", "2026-11-28", 5.5),  # 00:00 IST
        ("America/St_Johns", "2026-07-01T02:00:00Z", "2026-06-30", -2.5),  # 23:30 NDT
        ("America/St_Johns", "2026-01-15T03:00:00Z", "2026-01-14", -3.5),  # 23:30 NST
        ("America/St_Johns", "2026-01-15T03:30:00Z", "2026-01-15", -3.5),  # 00:00 NST
    ],
)
def test_engine_half_hour_zones(tz: str, moment: str, day: str, offset: float) -> None:
    """Half-hour zones give the local date and a fractional x-tz-offset."""
    rules = one_rule(STAMP, extra=f"    timezone: {tz}\n")

    result = plan(rules, make_event(date_created=moment))

    assert ({"date_won": day}, offset) == (result.update, result.tz_offset_hours)


def test_engine_file_timezone_applies_to_its_rules() -> None:
    """A rule without its own zone takes the file's."""
    rules = ruleset(f"timezone: Asia/Kolkata\nrules:\n  - name: r\n    then: {STAMP}\n")

    assert 5.5 == plan(rules, make_event()).tz_offset_hours


def test_engine_shifted_dates_and_now() -> None:
    """today+7d, today-1d and now are computed from the event's moment in the rule's zone."""
    rules = one_rule(
        "[{set: {custom.next_step_date: today+7d, date_lost: today-1d, note: now}}]",
        extra="    timezone: America/New_York\n",
    )

    result = plan(rules, make_event(date_created="2026-11-28T03:30:00Z"))

    assert {
        "custom.next_step_date": "2026-12-04",
        "date_lost": "2026-11-26",
        "note": "2026-11-28T03:30:00+00:00",
    } == result.update


def test_engine_tz_offset_comes_from_the_last_contributing_rule() -> None:
    """The write carries the zone of the last fired rule whose part is sent."""
    rules = ruleset(
        "rules:\n"
        "  - name: india\n    timezone: Asia/Kolkata\n    then: [{set: {confidence: 1}}]\n"
        "  - name: newfoundland\n    timezone: America/St_Johns\n    then: [{set: {value: 2}}]\n"
        "  - name: noop\n    timezone: UTC\n    then: [{set: {note: c}}]\n"
    )

    result = plan(rules, make_event(data={"note": "c"}, date_created="2026-07-01T12:00:00Z"))

    assert ({"confidence": 1, "value": 2}, -2.5) == (result.update, result.tz_offset_hours)


# --- merging -----------------------------------------------------------------------------


def test_engine_later_rule_wins_and_the_conflict_is_recorded() -> None:
    """Two rules writing one field differently: the later value goes out, with a Conflict."""
    rules = ruleset(
        "rules:\n"
        "  - name: first\n    then: [{set: {confidence: 80}}]\n"
        "  - name: second\n    then: [{set: {confidence: 90}}]\n"
    )

    result = plan(rules, make_event(data={"confidence": 10}))

    assert (
        {"confidence": 90},
        (Conflict("confidence", "first", 80, "second", 90),),
        (Dropped("confidence", "first", "overridden by rule 'second'"),),
    ) == (result.update, result.conflicts, result.dropped)


def test_engine_same_value_twice_is_no_conflict() -> None:
    """Two rules agreeing on a value do not conflict."""
    rules = ruleset(
        "rules:\n"
        "  - name: first\n    then: [{set: {confidence: 100}}]\n"
        "  - name: second\n    then: [{set: {confidence: 100.0}}]\n"
    )

    result = plan(rules, make_event(data={"confidence": 10}))

    assert ({"confidence": 100.0}, ()) == (result.update, result.conflicts)


def test_engine_unset_writes_null() -> None:
    """unset sends null for each field."""
    result = plan(
        one_rule("[{unset: [date_lost, custom.Reason]}]"),
        make_event(data={"date_lost": "2026-01-01", "custom.Reason": "price"}),
    )

    assert {"date_lost": None, "custom.Reason": None} == result.update


@pytest.mark.parametrize(
    ("then", "current", "expected"),
    [
        ("[{add: {custom.Tags: a}}]", ["x"], {"custom.Tags.add": "a"}),
        ("[{remove: {custom.Tags: x}}]", ["x", "y"], {"custom.Tags.remove": "x"}),
        ("[{add: {custom.Tags: a}}]", None, {"custom.Tags.add": "a"}),
        ("[{add: {custom.Tags: [a, b]}}]", ["x"], {"custom.Tags": ["x", "a", "b"]}),
        (
            "[{add: {custom.Tags: a}}, {remove: {custom.Tags: x}}]",
            ["x", "y"],
            {"custom.Tags": ["y", "a"]},
        ),
        ("[{add: {custom.Tags: [a, x]}}]", ["x"], {"custom.Tags.add": "a"}),
        (
            "[{set: {custom.Tags: [a]}}, {add: {custom.Tags: b}}]",
            ["x"],
            {"custom.Tags": ["a", "b"]},
        ),
        ("[{unset: [custom.Tags]}, {add: {custom.Tags: b}}]", ["x"], {"custom.Tags": ["b"]}),
        (
            "[{set: {custom.Tags: [a, b]}}, {add: {custom.Tags: b}}]",
            ["x"],
            {"custom.Tags": ["a", "b"]},
        ),
    ],
)
def test_engine_multi_value_fields_combine(
    then: str, current: Any, expected: dict[str, Any]
) -> None:
    """One effective add/remove goes out as .add/.remove; more becomes the whole list."""
    event = make_event(data={"custom.Tags": current})

    assert expected == plan(one_rule(then), event).update


def test_engine_multi_value_parts_of_several_rules_combine() -> None:
    """Adds of two rules to one field become the whole resulting list."""
    rules = ruleset(
        "rules:\n"
        "  - name: first\n    then: [{add: {custom.Segment: Enterprise}}]\n"
        "  - name: second\n    then: [{add: {custom.Segment: Strategic}}]\n"
    )

    result = plan(rules, make_event(data={"custom.cf_seg": ["SMB"]}), METADATA)

    assert ({"custom.cf_seg": ["SMB", "Enterprise", "Strategic"]}, ()) == (
        result.update,
        result.conflicts,
    )


def test_engine_add_on_a_single_value_field_is_not_applied() -> None:
    """Close's metadata says the field takes one value, so add cannot apply."""
    result = plan(one_rule("[{add: {custom.Source: web}}]"), make_event(), METADATA)

    assert ((), "custom field 'Source' does not accept multiple values") == (
        result.fired,
        result.reasons_not_fired["r"],
    )


# --- no-op detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("then", "data"),
    [
        ("[{set: {confidence: 100}}]", {"confidence": 100.0}),
        ("[{set: {date_won: today}}]", {"date_won": "2026-05-04"}),
        ("[{set: {date_lost: now}}]", {"date_lost": "2026-05-04T12:00:00Z"}),
        ("[{set: {note: null}}]", {}),
        ("[{unset: [date_lost]}]", {"date_lost": None}),
        ("[{unset: [date_lost]}]", {}),
        ("[{add: {custom.Tags: a}}]", {"custom.Tags": ["a", "b"]}),
        ("[{add: {custom.Tags: a}}]", {"custom.Tags": "a"}),
        ("[{remove: {custom.Tags: c}}]", {"custom.Tags": ["a", "b"]}),
        ("[{remove: {custom.Tags: c}}]", {}),
        ("[{set: {custom.Tags: [b, a]}}]", {"custom.Tags": ["b", "a"]}),
        ("[{add: {custom.Tags: c}}, {remove: {custom.Tags: c}}]", {"custom.Tags": ["a"]}),
        ("[{set: {status: Won}}]", {"status_label": "Won"}),
    ],
)
def test_engine_drops_what_already_holds(then: str, data: dict[str, Any]) -> None:
    """A rule that fires but changes nothing leads to no update and no API call."""
    result = plan(one_rule(then), make_event(data=data))

    assert (("r",), {}, False, None) == (
        result.fired,
        result.update,
        result.has_update,
        result.tz_offset_hours,
    )


def test_engine_records_each_dropped_part() -> None:
    """Each part left out says which field, which rule and why."""
    result = plan(
        one_rule("[{set: {confidence: 100, value: 5}}, {add: {custom.Tags: a}}]"),
        make_event(data={"confidence": 100, "value": 1, "custom.Tags": ["a"]}),
    )

    assert (
        {"value": 5},
        (Dropped("confidence", "r", "already holds"), Dropped("custom.Tags", "r", "already holds")),
    ) == (result.update, result.dropped)


def test_engine_status_with_metadata_is_a_no_op_when_its_id_holds() -> None:
    """set status compares status ids when Close's metadata is known."""
    event = make_event(data={"status_id": "stat_won_a", "pipeline_id": "pipe_a"})

    assert {} == plan(one_rule("[{set: {status: Won}}]"), event, METADATA).update


# --- statuses and custom fields ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "status_id"), [("pipe_a", "stat_won_a"), ("pipe_b", "stat_won_b")]
)
def test_engine_status_label_resolves_in_the_opportunitys_pipeline(
    pipeline: str, status_id: str
) -> None:
    """Two pipelines both have Won; the opportunity's own pipeline decides the id."""
    event = make_event(data={"status_id": "stat_active_b", "pipeline_id": pipeline})

    assert {"status_id": status_id} == plan(
        one_rule("[{set: {status: Won}}]"), event, METADATA
    ).update


def test_engine_status_label_offline_uses_the_label_key() -> None:
    """Without metadata the label goes out under Close's deprecated `status` key."""
    event = make_event(data={"status_label": "Active"})

    assert {"status": "Won"} == plan(one_rule("[{set: {status: Won}}]"), event).update


def test_engine_unknown_status_label_is_unresolved() -> None:
    """A label the pipeline lacks leaves the rule unapplied and names the label."""
    event = make_event(data={"pipeline_id": "pipe_a"})

    result = plan(one_rule("[{set: {status: Closed}}]"), event, METADATA)

    assert ((), {}, ("Closed",), "unknown status 'Closed' in pipeline pipe_a") == (
        result.fired,
        result.update,
        result.unresolved,
        result.reasons_not_fired["r"],
    )


def test_engine_unknown_custom_field_in_a_condition_is_unresolved() -> None:
    """A condition on a field metadata does not know: no fire, the name is unresolved."""
    rules = one_rule("[{set: {confidence: 1}}]", condition="[{custom.Region: {empty: true}}]")

    result = plan(rules, make_event(), METADATA)

    assert ((), ("Region",), "unknown custom field 'Region'") == (
        result.fired,
        result.unresolved,
        result.reasons_not_fired["r"],
    )


def test_engine_unknown_custom_field_in_an_action_is_unresolved() -> None:
    """An action on a field metadata does not know leaves the rule unapplied."""
    result = plan(one_rule("[{add: {custom.Region: EMEA}}]"), make_event(), METADATA)

    assert ((), ("Region",), "unknown custom field 'Region'") == (
        result.fired,
        result.unresolved,
        result.reasons_not_fired["r"],
    )


def test_engine_custom_fields_by_name_and_id_write_the_id() -> None:
    """custom.NAME and custom.cf_ID both write Close's custom.cf_ID key."""
    rules = one_rule("[{set: {custom.Source: web, custom.cf_renew: today}}]")

    result = plan(rules, make_event(), METADATA)

    assert {"custom.cf_src": "web", "custom.cf_renew": "2026-05-04"} == result.update


# --- which events and which rules ----------------------------------------------------------


def test_engine_ignores_events_caused_by_its_own_api_key() -> None:
    """An event made by dealkeeper's own key changes nothing: no loops."""
    event = make_event(data={"confidence": 1}, api_key_id="api_own")

    result = plan(
        one_rule("[{set: {confidence: 100}}]"), event, own_api_key_ids=frozenset({"api_own"})
    )

    assert ("event caused by dealkeeper's own API key api_own", (), {}) == (
        result.ignored,
        result.fired,
        result.update,
    )


def test_engine_other_api_keys_are_not_ignored() -> None:
    """Events from other integrations' keys are evaluated as usual."""
    event = make_event(data={"confidence": 1}, api_key_id="api_other")

    result = plan(
        one_rule("[{set: {confidence: 100}}]"), event, own_api_key_ids=frozenset({"api_own"})
    )

    assert (None, {"confidence": 100}) == (result.ignored, result.update)


def test_engine_ignores_other_object_types() -> None:
    """Only opportunity events get rules."""
    event = make_event(object_type="lead")

    assert (
        "not an opportunity event: lead.updated"
        == plan(one_rule("[{set: {confidence: 1}}]"), event).ignored
    )


def test_engine_disabled_rule_does_not_fire() -> None:
    """enabled: false turns a rule off, and says so."""
    result = plan(one_rule("[{set: {confidence: 1}}]", extra="    enabled: false\n"), make_event())

    assert ((), {"r": "disabled"}) == (result.fired, result.reasons_not_fired)


def test_engine_rule_runs_only_for_its_triggers() -> None:
    """A rule for created events does not run on updates."""
    rules = one_rule("[{set: {confidence: 1}}]", extra="    trigger: opportunity.created\n")

    assert {"r": "trigger opportunity.updated not in [opportunity.created]"} == plan(
        rules, make_event()
    ).reasons_not_fired


def test_engine_dry_run_rule_fires_without_writing() -> None:
    """A dry_run rule is listed as fired, and its parts go to the dry-run update only."""
    rules = ruleset(
        "rules:\n"
        "  - name: live\n    then: [{set: {confidence: 1}}]\n"
        "  - name: trial\n    dry_run: true\n    then: [{set: {value: 2, note: c}}]\n"
    )

    result = plan(rules, make_event(data={"note": "c"}))

    assert (
        ("live", "trial"),
        {"confidence": 1},
        {"value": 2},
        (Dropped("note", "trial", "already holds"), Dropped("value", "trial", "dry run")),
        0.0,
    ) == (
        result.fired,
        result.update,
        result.dry_run_update,
        result.dropped,
        result.tz_offset_hours,
    )


def test_engine_dry_run_alone_makes_no_call() -> None:
    """When only dry_run rules fire there is no update and no x-tz-offset."""
    result = plan(one_rule("[{set: {value: 2}}]", extra="    dry_run: true\n"), make_event())

    assert ({}, {"value": 2}, None) == (
        result.update,
        result.dry_run_update,
        result.tz_offset_hours,
    )


def test_engine_created_event_counts_as_changed_from_null() -> None:
    """A deal created won fires changed_to: won."""
    rules = one_rule("[{set: {date_won: today}}]", condition="[{status_type: {changed_to: won}}]")

    result = plan(rules, make_event("created", data={"status_type": "won"}))

    assert {"date_won": "2026-05-04"} == result.update


def test_engine_deleted_event_drops_every_part() -> None:
    """A rule may fire on a deletion, but nothing is written to a deleted opportunity."""
    rules = one_rule("[{set: {confidence: 1}}]", extra="    trigger: opportunity.deleted\n")

    result = plan(rules, make_event("deleted", previous_data={"confidence": 0}))

    assert (("r",), {}, (Dropped("confidence", "r", "opportunity deleted"),)) == (
        result.fired,
        result.update,
        result.dropped,
    )


def test_engine_reasons_name_the_first_failing_condition() -> None:
    """reasons_not_fired points at the condition that failed, with its position."""
    rules = one_rule(
        "[{set: {confidence: 1}}]", condition="[{status_type: won}, {confidence: {lt: 100}}]"
    )

    result = plan(rules, make_event(data={"status_type": "won", "confidence": 100}))

    assert {"r": "confidence 100 lt 100 is false (rules/t.yaml:3:31)"} == result.reasons_not_fired


def test_engine_plan_names_event_and_opportunity() -> None:
    """The plan carries the event and opportunity ids for logging."""
    result = plan(ruleset("rules: []\n"), make_event())

    assert ("ev_1", "oppo_1", False) == (result.event_id, result.opportunity_id, result.has_update)


def test_engine_setting_a_list_in_another_order_is_a_no_op() -> None:
    """A multi-value field set to the values it holds, in any order, needs no call."""
    result = plan(
        one_rule("[{set: {custom.Tags: [a, b]}}]"), make_event(data={"custom.Tags": ["b", "a"]})
    )

    assert {} == result.update


def test_engine_a_choice_named_no_is_text() -> None:
    """`custom.Answer: No` compares with the text "No", as YAML 1.2 reads it."""
    rules = one_rule("[{set: {confidence: 0}}]", condition="[{custom.Answer: No}]")

    assert [("r",), ()] == [
        plan(rules, make_event(data={"custom.Answer": "No"})).fired,
        plan(rules, make_event(data={"custom.Answer": False})).fired,
    ]
