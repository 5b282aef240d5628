"""No stale writes: a plan from an old event is narrowed to what still holds now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.events import Event
from service.reconcile import CHANGED_SINCE, NO_LONGER_CALLED_FOR, is_unchanged_since, reconcile
from service.rules import load_rules, make_plan

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
    """The opportunity is unchanged when its date_updated is not later than the event's."""
    event = won_event()

    assert is_unchanged_since(event, {"date_updated": THEN})
    assert not is_unchanged_since(event, {"date_updated": LATER})
    assert not is_unchanged_since(event, {})
