"""No stale writes: a plan from an old event is narrowed to what still holds now."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from service.core.events import Event, swept_event
from service.core.reconcile import (
    CHANGED_SINCE,
    NO_LONGER_CALLED_FOR,
    OwnWrite,
    held_parts,
    is_unchanged_since,
    not_yet_taken,
    reconcile,
    with_own_writes,
    written_field,
)
from service.core.rules import load_rules, make_plan

RULES = load_rules(
    """\
timezone: America/New_York
rules:
  - name: stamp-date-won
    if:
      - status_type: {changed_to: won}
    then:
      - set: {date_won: today}
  - name: full-confidence-when-won
    if:
      - status_type: won
    then:
      - set: {confidence: 100}
  - name: tag-big
    if:
      - value: {gte: 1000}
    then:
      - add: {custom.Segment: Big}
""",
    "rules/r.yaml",
)
THEN = "2026-11-28T03:30:00.000000+00:00"
LATER = "2026-11-28T03:31:00.000000+00:00"


def won_event(**data: Any) -> Event:
    state = {
        "id": "oppo_1",
        "status_type": "won",
        "confidence": 60,
        "date_won": "2026-11-28",
        "value": 10,
        "date_updated": THEN,
        **data,
    }
    return Event(
        id="ev_1",
        object_type="opportunity",
        action="updated",
        object_id="oppo_1",
        date_created=datetime(2026, 11, 28, 3, 30, tzinfo=UTC),
        date_updated=datetime(2026, 11, 28, 3, 30, tzinfo=UTC),
        data=state,
        previous_data={"status_type": "active"},
        changed_fields=("status_type",),
    )


def narrowed(event: Event, current: dict[str, Any]) -> Any:
    plan = make_plan(RULES, event, metadata=None)
    return reconcile(plan, event, current, ruleset=RULES, metadata=None)


def test_reconcile_unchanged_opportunity_keeps_the_whole_plan() -> None:
    """When nothing happened since the event, the plan goes out as made."""
    event = won_event()

    result = narrowed(event, dict(event.data))

    assert {"date_won": "2026-11-27", "confidence": 100} == result.update


def test_reconcile_drops_what_the_current_state_no_longer_calls_for() -> None:
    """Moved back to active since: neither the won date nor full confidence is written."""
    event = won_event()
    current = {**event.data, "status_type": "active", "date_updated": LATER}

    result = narrowed(event, current)

    assert {} == result.update
    assert {("date_won", NO_LONGER_CALLED_FOR), ("confidence", NO_LONGER_CALLED_FOR)} == {
        (d.field, d.reason) for d in result.dropped if d.rule == ""
    }


def test_reconcile_never_overwrites_a_field_changed_since_the_event() -> None:
    """A person set date_won by hand after the event: our stamp must not replace it."""
    event = won_event()
    current = {**event.data, "date_won": "2026-11-20", "date_updated": LATER}

    result = narrowed(event, current)

    assert {"confidence": 100} == result.update
    assert ("date_won", CHANGED_SINCE) in {(d.field, d.reason) for d in result.dropped}


def test_reconcile_keeps_parts_unrelated_to_what_changed() -> None:
    """Only the value changed since: the status-driven parts still go out."""
    event = won_event()
    current = {**event.data, "value": 20, "date_updated": LATER}

    result = narrowed(event, current)

    assert {"date_won": "2026-11-27", "confidence": 100} == result.update


def test_reconcile_adds_compose_with_later_list_changes() -> None:
    """An .add still goes out when the list changed since, unless the value is there now."""
    event = won_event(value=5000, **{"custom.Segment": ["A"]})
    moved = {**event.data, "custom.Segment": ["A", "B"], "date_updated": LATER}
    tagged = {**event.data, "custom.Segment": ["Big"], "date_updated": LATER}

    assert "Big" == narrowed(event, moved).update["custom.Segment.add"]
    assert "custom.Segment.add" not in narrowed(event, tagged).update


def test_reconcile_unchanged_since_compares_date_updated() -> None:
    """The opportunity is unchanged when its date_updated is the event's."""
    event = won_event()

    assert is_unchanged_since(event, {"date_updated": THEN})
    assert not is_unchanged_since(event, {"date_updated": LATER})
    assert not is_unchanged_since(event, {})


def test_reconcile_an_event_claiming_a_later_state_than_the_deal_is_no_guide() -> None:
    """The event's data says it was updated after the deal as read now (found by the
    property test: a varied `date_updated`): what it says the deal holds is not believed,
    and nothing the deal as read does not call for is written."""
    event = won_event(date_updated=LATER)
    current = {**event.data, "status_type": "active", "date_updated": THEN}

    assert not is_unchanged_since(event, current)
    assert {} == narrowed(event, current).update


def test_reconcile_swept_event_plans_again_from_the_deal_read_though_unchanged() -> None:
    """A swept event's state is a listing, which may lack fields (custom fields): the plan
    is made again from the deal read, even when its date_updated has not moved."""
    rules = load_rules(
        "rules:\n  - name: s\n    schedule: '0 6 * * *'\n    find: {status_type: active}\n"
        "    if: [{custom.Source: {empty: true}}]\n    then: [{set: {custom.Source: Unknown}}]\n",
        "rules/s.yaml",
    )
    listed = {"id": "oppo_1", "status_type": "active", "date_updated": THEN}
    event = swept_event(listed, sweep="s", moment=datetime(2026, 11, 28, 6, tzinfo=UTC))
    plan = make_plan(rules, event, metadata=None)

    result = reconcile(
        plan, event, {**listed, "custom.Source": "Web"}, ruleset=rules, metadata=None
    )

    assert {"custom.Source": "Unknown"} == plan.update
    assert {} == result.update


def test_reconcile_swept_event_keeps_what_the_sweep_worked_out_for_the_deal() -> None:
    """`date_status_changed` is looked up by the sweep, never read with the deal: the plan
    made again from the deal read still dates the win by it."""
    rules = load_rules(
        "timezone: America/New_York\nrules:\n  - name: s\n    schedule: '30 2 * * *'\n"
        "    find: {status_type: won}\n    if: [{date_won: {empty: true}}]\n"
        "    then: [{set: {date_won: 'date_of(date_status_changed, date_updated)'}}]\n",
        "rules/s.yaml",
    )
    listed = {"id": "oppo_1", "status_type": "won", "date_won": None, "date_updated": THEN}
    looked_up = {**listed, "date_status_changed": "2026-11-20T04:10:00+00:00"}
    event = swept_event(looked_up, sweep="s", moment=datetime(2026, 11, 28, 7, 30, tzinfo=UTC))
    plan = make_plan(rules, event, metadata=None)

    result = reconcile(plan, event, listed, ruleset=rules, metadata=None)

    assert {"date_won": "2026-11-19"} == result.update


# -- dealkeeper's own earlier writes are not someone else's change --------------------------
#
# Event A (older) and event B (newer) of one deal: A's write reached Close after B happened,
# so B's data cannot show it. B's answer is the later one and must win over A's; a person's
# change, or a write for a newer event, stays protected.

OWN_RULES = load_rules(
    """\
timezone: America/New_York
rules:
  - name: stamp-date-won
    if:
      - status_type: {changed_to: won}
    then:
      - set: {date_won: today}
  - name: clear-date-won-on-reopen
    if:
      - status_type: {changed_to: active}
    then:
      - unset: [date_won]
  - name: segment-when-won
    if:
      - status_type: {changed_to: won}
    then:
      - set: {custom.Segment: [Won]}
""",
    "rules/own.yaml",
)
MONDAY = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
WEDNESDAY = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)  # 22:30 on Tuesday the 1st in New York
B_UPDATED = "2026-12-02T03:30:00.000000+00:00"
AFTER_B = "2026-12-02T03:30:03.000000+00:00"
B_DATE = "2026-12-01"  # what stamp-date-won writes for B
CLOSE_B_DATE = "2026-12-02"  # what Close stamped on B's move to won (its UTC date)


def event_b(status: Any = "won", **data: Any) -> Event:
    """A person moves the deal to `status`; Close stamps its own date_won."""
    previous = "active" if status == "won" else "won"
    return Event(
        id="ev_b",
        object_type="opportunity",
        action="updated",
        object_id="oppo_1",
        date_created=WEDNESDAY,
        date_updated=WEDNESDAY,
        data={"id": "oppo_1", "status_type": status, "date_updated": B_UPDATED, **data},
        previous_data={"status_type": previous},
        changed_fields=("status_type",),
    )


def own(update: dict[str, Any], *, event_at: datetime = MONDAY, landed: float = 3) -> OwnWrite:
    """Our write for an event at `event_at`, taken by Close `landed` seconds after B."""
    return OwnWrite(update, event_at.timestamp(), WEDNESDAY.timestamp() + landed)


def reconciled(event: Event, current: dict[str, Any], *writes: OwnWrite) -> Any:
    plan = make_plan(OWN_RULES, event, metadata=None)
    return reconcile(
        plan, event, {**current, "date_updated": AFTER_B}, ruleset=OWN_RULES, metadata=None,
        own_writes=writes,
    )  # fmt: skip


def test_own_set_for_an_older_event_does_not_make_the_newer_answer_stale() -> None:
    """Won Monday (A), reopened, won again Wednesday (B); A's stamp landed after B: B's
    Wednesday wins (it ended with Monday's date, taken for a person's edit)."""
    b = event_b(date_won=CLOSE_B_DATE)

    result = reconciled(b, {**b.data, "date_won": "2026-11-30"}, own({"date_won": "2026-11-30"}))

    assert B_DATE == result.update["date_won"]


def test_own_set_for_an_older_event_undoes_what_the_newer_event_held() -> None:
    """Close stamped B's date as stamp-date-won would (B's plan left it out as already
    holding); A's stamp replaced it afterwards: B's date is written back."""
    b = event_b(date_won=B_DATE, **{"custom.Segment": ["Won"]})
    assert {} == make_plan(OWN_RULES, b, metadata=None).update

    result = reconciled(b, {**b.data, "date_won": "2026-11-30"}, own({"date_won": "2026-11-30"}))

    assert B_DATE == result.update["date_won"]


def test_own_unset_for_an_older_event_does_not_make_the_newer_answer_stale() -> None:
    """A (reopened) cleared date_won after B (won again) happened: B still stamps it."""
    b = event_b(date_won=CLOSE_B_DATE)

    result = reconciled(b, {**b.data, "date_won": None}, own({"date_won": None}))

    assert B_DATE == result.update["date_won"]


def test_own_set_does_not_protect_the_value_a_newer_unset_clears() -> None:
    """A (won) stamped date_won after B (reopened) happened: B's clearing still goes out."""
    b = event_b("active", date_won=None)

    result = reconciled(b, {**b.data, "date_won": "2026-11-30"}, own({"date_won": "2026-11-30"}))

    assert {"date_won": None} == result.update


@pytest.mark.parametrize(
    ("written", "current"),
    [
        ({"custom.Segment.add": "Big"}, ["SMB", "Big"]),
        ({"custom.Segment.remove": "SMB"}, []),
        ({"custom.Segment.add": "Big", "custom.Segment.remove": "SMB"}, ["Big"]),
    ],
    ids=["add", "remove", "add-and-remove"],
)
def test_own_add_or_remove_for_an_older_event_does_not_make_the_newer_answer_stale(
    written: dict[str, Any], current: list[str]
) -> None:
    b = event_b(**{"custom.Segment": ["SMB"]})

    result = reconciled(b, {**b.data, "custom.Segment": current}, own(written))

    assert ["Won"] == result.update["custom.Segment"]


def test_own_writes_apply_in_the_order_they_were_sent() -> None:
    """Two older events' writes landed after B: the last one sent is what Close holds."""
    b = event_b(date_won=CLOSE_B_DATE)
    first, last = own({"date_won": "2026-11-29"}), own({"date_won": "2026-11-30"}, landed=4)

    kept = reconciled(b, {**b.data, "date_won": "2026-11-30"}, first, last)
    protected = reconciled(b, {**b.data, "date_won": "2026-11-29"}, first, last)

    assert (B_DATE, None) == (kept.update.get("date_won"), protected.update.get("date_won"))


def test_a_persons_edit_after_the_event_stays_protected_beside_own_writes() -> None:
    """Our older writes touched other fields only: a person's date is kept."""
    b = event_b(date_won=CLOSE_B_DATE, confidence=50)
    current = {**b.data, "date_won": "2026-12-05", "confidence": 100}

    result = reconciled(b, current, own({"confidence": 100}))

    assert ("date_won", CHANGED_SINCE) in {(d.field, d.reason) for d in result.dropped}


def test_a_persons_edit_after_our_own_write_wins() -> None:
    """A's stamp landed after B, then a person typed a date: the person's date stays."""
    b = event_b(date_won=CLOSE_B_DATE)

    result = reconciled(b, {**b.data, "date_won": "2026-12-05"}, own({"date_won": "2026-11-30"}))

    assert "date_won" not in result.update


def test_a_persons_multi_value_edit_after_our_own_add_wins() -> None:
    b = event_b(**{"custom.Segment": ["SMB"]})
    current = {**b.data, "custom.Segment": ["SMB", "Big", "Partner"]}

    result = reconciled(b, current, own({"custom.Segment.add": "Big"}))

    assert "custom.Segment" not in result.update


def test_own_write_for_a_newer_event_is_protected() -> None:
    """Events processed out of order: B's write (Wednesday) landed first; A (Monday),
    processed late, must not replace it."""
    a = Event(
        id="ev_a",
        object_type="opportunity",
        action="updated",
        object_id="oppo_1",
        date_created=MONDAY,
        date_updated=MONDAY,
        data={"id": "oppo_1", "status_type": "won", "date_won": "2026-11-30",
              "date_updated": "2026-11-30T15:00:00.000000+00:00"},
        previous_data={"status_type": "active"},
        changed_fields=("status_type",),
    )  # fmt: skip
    b_write = OwnWrite({"date_won": "2026-12-02"}, WEDNESDAY.timestamp(), WEDNESDAY.timestamp() + 1)

    result = reconciled(a, {**a.data, "date_won": "2026-12-02"}, b_write)

    assert "date_won" not in result.update


def test_own_write_taken_before_the_event_is_not_taken_for_the_current_value() -> None:
    """A's stamp landed before B happened (B's data shows what followed it); a person who
    puts A's value back after B is a person, not us."""
    b = event_b(date_won=CLOSE_B_DATE)
    before = own({"date_won": "2026-11-30"}, landed=-0.001)

    result = reconciled(b, {**b.data, "date_won": "2026-11-30"}, before)

    assert "date_won" not in result.update


def test_own_write_taken_before_the_event_leaves_the_events_state_as_it_was() -> None:
    """Our write landed, then a person changed the field (B): B's state is the person's,
    and B's plan is made from it, not from our earlier value."""
    b = event_b(date_won=CLOSE_B_DATE, confidence=50)
    before = own({"confidence": 100}, landed=-1)

    result = reconciled(b, {**b.data, "date_won": "2026-11-30"}, before)

    assert b is with_own_writes(b, [before])
    assert "date_won" not in result.update


def test_own_write_whose_answer_never_came_counts_as_nobodys() -> None:
    """A PUT that failed (or whose worker died before recording Close's answer) may not
    have been taken: the changed value is protected, as any other."""
    b = event_b(date_won=CLOSE_B_DATE)
    unanswered = OwnWrite({"date_won": "2026-11-30"}, MONDAY.timestamp(), None)

    result = reconciled(b, {**b.data, "date_won": "2026-11-30"}, unanswered)

    assert "date_won" not in result.update


def test_receipts_without_their_moments_count_as_nobodys() -> None:
    """Receipts left before they carried the event's and the write's moments."""
    b = event_b(date_won=CLOSE_B_DATE)

    result = reconciled(
        b, {**b.data, "date_won": "2026-11-30"}, OwnWrite({"date_won": "2026-11-30"})
    )

    assert "date_won" not in result.update


# -- the edges: what mutation testing showed no test would notice --------------------------


def test_reconcile_an_unreadable_date_updated_is_never_unchanged() -> None:
    event = won_event()

    assert not is_unchanged_since(event, {"date_updated": "not a time"})
    assert not is_unchanged_since(replace(event, data={}), {"date_updated": THEN})


def test_reconcile_a_status_label_key_writes_the_status_id() -> None:
    assert ("status_id", "custom.cf_x", "value") == (
        written_field("status"), written_field("custom.cf_x.add"), written_field("value")
    )  # fmt: skip


def test_reconcile_an_unset_the_state_no_longer_calls_for_is_dropped() -> None:
    """Reopened (A) asks to clear date_won; by now the deal is won again: not sent."""
    reopened = event_b("active", date_won="2026-11-30")
    current = {**reopened.data, "status_type": "won", "date_updated": AFTER_B}

    plan = make_plan(OWN_RULES, reopened, metadata=None)
    result = reconcile(plan, reopened, current, ruleset=OWN_RULES, metadata=None)

    assert ({"date_won": None}, {}) == (plan.update, result.update)


def test_reconcile_a_remove_composes_with_later_list_changes() -> None:
    rules = load_rules(
        "rules:\n  - name: drop-smb\n    if: [{value: {gte: 1000}}]\n"
        "    then: [{remove: {custom.Segment: SMB}}]\n",
        "rules/r.yaml",
    )
    event = won_event(value=5000, **{"custom.Segment": ["SMB"]})
    current = {**event.data, "custom.Segment": ["SMB", "Partner"], "date_updated": LATER}

    plan = make_plan(rules, event, metadata=None)
    result = reconcile(plan, event, current, ruleset=rules, metadata=None)

    assert {"custom.Segment.remove": "SMB"} == result.update


def test_own_writes_skip_ones_that_do_not_count_and_apply_the_rest() -> None:
    """A write for a newer event first, then one for an older event: the second counts."""
    b = event_b(date_won=CLOSE_B_DATE)
    newer = OwnWrite({"date_won": "2026-12-03"}, WEDNESDAY.timestamp() + 60, None)

    result = reconciled(
        b, {**b.data, "date_won": "2026-11-30"}, newer, own({"date_won": "2026-11-30"})
    )

    assert B_DATE == result.update["date_won"]


def test_own_write_for_an_event_of_the_same_moment_is_not_older() -> None:
    b = event_b(date_won=CLOSE_B_DATE)
    same = own({"date_won": "2026-11-30"}, event_at=WEDNESDAY)

    assert "date_won" not in reconciled(b, {**b.data, "date_won": "2026-11-30"}, same).update


def test_own_write_taken_at_the_very_moment_of_the_change_is_not_after_it() -> None:
    b = event_b(date_won=CLOSE_B_DATE)
    at_once = own({"date_won": "2026-11-30"}, landed=0)

    assert "date_won" not in reconciled(b, {**b.data, "date_won": "2026-11-30"}, at_once).update


def test_own_writes_are_placed_by_the_changes_date_updated_not_the_events_date() -> None:
    """Close may consolidate events: the change the event shows was made at its data's
    `date_updated`. A write taken before that is already in the event's state."""
    b = replace(event_b(date_won=CLOSE_B_DATE), data={
        **event_b(date_won=CLOSE_B_DATE).data, "date_updated": "2026-12-02T03:30:10.000000+00:00"
    })  # fmt: skip
    between = own({"date_won": "2026-11-30"}, landed=5)  # after date_created, before the change

    assert b is with_own_writes(b, [between])


def test_own_add_of_a_value_already_there_adds_nothing() -> None:
    b = event_b(**{"custom.Segment": ["Big"]})

    seen = with_own_writes(b, [own({"custom.Segment.add": "Big"})])

    assert b is seen


def test_own_remove_leaving_nothing_is_the_same_as_null() -> None:
    b = event_b(**{"custom.Segment": ["SMB"]})

    result = reconciled(
        b, {**b.data, "custom.Segment": None}, own({"custom.Segment.remove": "SMB"})
    )

    assert ["Won"] == result.update["custom.Segment"]


def test_held_parts_are_the_ones_left_out_as_already_holding() -> None:
    holds = make_plan(
        OWN_RULES, event_b(date_won=B_DATE, **{"custom.Segment": ["Won"]}), metadata=None
    )
    writes = make_plan(OWN_RULES, event_b(date_won=CLOSE_B_DATE), metadata=None)
    nothing = make_plan(OWN_RULES, event_b("lost"), metadata=None)

    assert (True, False, False) == (held_parts(holds), held_parts(writes), held_parts(nothing))


def test_our_own_keys_event_stays_ignored_when_planned_again() -> None:
    """The plans made again from our writes' view keep knowing our key."""
    ours = replace(event_b(date_won=CLOSE_B_DATE), api_key_id="api_ours")
    plan = make_plan(OWN_RULES, ours, metadata=None, own_api_key_ids=frozenset({"api_ours"}))

    result = reconcile(
        plan, ours, {**ours.data, "date_won": "2026-11-30", "date_updated": AFTER_B},
        ruleset=OWN_RULES, metadata=None, own_api_key_ids=frozenset({"api_ours"}),
        own_writes=[own({"date_won": "2026-11-30"})],
    )  # fmt: skip

    assert ({}, plan.ignored) == (result.update, result.ignored)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ({"custom.cf_t": ["a"], "confidence": 10}, {}),
        ({"custom.cf_t": ["b"], "confidence": 10}, {"custom.cf_t.add": "a", "confidence": 90}),
        ({}, {"custom.cf_t.add": "a", "confidence": 90}),
        ({"custom.cf_t": "a"}, {}),
    ],
    ids=["taken", "not-taken", "field-unset", "single-value"],
)
def test_not_yet_taken_leaves_out_a_put_the_deal_shows(
    current: dict[str, Any], expected: dict[str, Any]
) -> None:
    """A PUT whose `.add` the deal shows was taken whole; else all of it is still to send."""
    assert expected == not_yet_taken({"custom.cf_t.add": "a", "confidence": 90}, current)


def test_not_yet_taken_keeps_only_the_list_edits_that_do_not_show() -> None:
    """A `.remove` shows when the value is gone; an `.add` not yet held goes again."""
    update = {"custom.cf_t.remove": "x", "custom.cf_u.add": "y", "note": "n"}

    assert {"custom.cf_u.add": "y", "note": "n"} == not_yet_taken(update, {"custom.cf_t": ["z"]})


def test_not_yet_taken_sends_values_set_alone_again() -> None:
    """Without a list edit there is nothing to tell by: setting values again is harmless."""
    assert {"confidence": 90} == not_yet_taken({"confidence": 90}, {"confidence": 90})
