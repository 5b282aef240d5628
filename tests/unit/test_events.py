"""Reading Close's event envelope: only what rules and jobs need, strictly checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.core.events import (
    EnvelopeError,
    event_from_delivery,
    event_from_dict,
    event_from_envelope,
)

CLOSE_EXAMPLE: dict[str, Any] = {
    "subscription_id": "whsub_8AmjKCZYT3zI8eZoi4HhFC",
    "event": {
        "id": "ev_2sYKRjcrA79yKxi3S4Crd7",
        "date_created": "2019-01-15T12:48:23.395000",
        "date_updated": "2019-01-15T12:48:23.395000",
        "organization_id": "orga_1",
        "user_id": "user_1",
        "request_id": "req_1",
        "object_type": "opportunity",
        "object_id": "oppo_8H4s",
        "lead_id": "lead_1",
        "action": "updated",
        "changed_fields": [
            "confidence",
            "date_updated",
            "status_id",
            "status_label",
            "status_type",
        ],
        "previous_data": {"status_type": "active", "confidence": 70},
        "data": {"id": "oppo_8H4s", "status_type": "won", "confidence": 100},
        "meta": {"request_method": "PUT"},
    },
}


def test_events_close_example_is_read() -> None:
    """Close's documented webhook example becomes an Event; a naive time is UTC."""
    event = event_from_envelope(CLOSE_EXAMPLE)

    assert "opportunity.updated" == event.name
    assert datetime(2019, 1, 15, 12, 48, 23, 395000, tzinfo=UTC) == event.date_created
    assert ("whsub_8AmjKCZYT3zI8eZoi4HhFC", None) == (event.subscription_id, event.api_key_id)
    assert "won" == event.state["status_type"]


@pytest.mark.parametrize(
    "stamp", ["2026-11-28T03:30:00Z", "2026-11-28T03:30:00+00:00", "2026-11-27T22:30:00-05:00"]
)
def test_events_times_with_offsets_become_utc(stamp: str) -> None:
    """Z, +00:00 and other offsets all name the same instant."""
    event = event_from_dict({**CLOSE_EXAMPLE["event"], "date_created": stamp, "date_updated": None})

    assert datetime(2026, 11, 28, 3, 30, tzinfo=UTC) == event.date_created
    assert event.date_created == event.date_updated


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-28T03:30:00",
        "2026-11-28T03:30:00.000",
        "2026-11-28T03:30:00.000000",
        "2026-11-28T03:30:00.000000Z",
        "2026-11-28T09:00:00.000+05:30",
        "2026-11-28 03:30:00",
    ],
)
def test_events_date_updated_with_or_without_fractions_or_offset(stamp: str) -> None:
    """Close writes the event's own times without an offset and its objects' with
    microseconds and +00:00: any of these forms names the same instant."""
    event = event_from_dict({**CLOSE_EXAMPLE["event"], "date_updated": stamp})

    assert datetime(2026, 11, 28, 3, 30, tzinfo=UTC) == event.date_updated


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+01:00",  # before the calendar's first day, in UTC
        "9999-12-31T23:59:59-14:00",  # after its last
        "1969-12-31T23:59:59Z",
        "9000-01-01T00:00:00Z",
    ],
)
def test_events_a_moment_no_event_is_from_is_refused_with_its_reason(stamp: str) -> None:
    """Found by the property test: the calendar's ends crashed the intake (500) or, in a
    rule's time zone, the job. Such an event is refused as malformed (400), named."""
    for key in ("date_created", "date_updated"):
        with pytest.raises(EnvelopeError, match=f"event.{key} must be"):
            event_from_delivery({**CLOSE_EXAMPLE, "event": {**CLOSE_EXAMPLE["event"], key: stamp}})


def test_events_a_huge_bad_timestamp_is_quoted_cut() -> None:
    """The reason goes to the log and back to the sender: not a megabyte of it."""
    with pytest.raises(EnvelopeError) as refused:
        event_from_dict({**CLOSE_EXAMPLE["event"], "date_created": "x" * 1_000_000})

    assert len(str(refused.value)) < 200


def test_events_dedupe_key_names_the_event_and_its_version() -> None:
    """Two versions of a consolidated event have different dedupe keys."""
    first = event_from_envelope(CLOSE_EXAMPLE)
    later = event_from_dict({**CLOSE_EXAMPLE["event"], "date_updated": "2019-01-15T12:48:30"})

    assert "ev_2sYKRjcrA79yKxi3S4Crd7-20190115T124823395000" == first.dedupe_key
    assert first.dedupe_key != later.dedupe_key


def test_events_deleted_object_state_is_its_previous_data() -> None:
    """A deleted event has no data; its state is what the object was."""
    event = event_from_dict(
        {**CLOSE_EXAMPLE["event"], "action": "deleted", "data": None, "previous_data": {"id": "o"}}
    )

    assert {"id": "o"} == event.state


def test_events_round_trip_through_job_data() -> None:
    """What a job carries through Redis reads back as the same Event."""
    event = event_from_envelope(CLOSE_EXAMPLE)

    assert event == event_from_dict(event.to_dict())


def test_events_organization_is_kept_through_job_data() -> None:
    """The organization the event names reaches the worker, which checks it again."""
    event = event_from_dict(event_from_envelope(CLOSE_EXAMPLE).to_dict())

    assert "orga_1" == event.organization_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"object_id": ""}, "event.object_id must be a non-empty string"),
        ({"action": 3}, "event.action must be a non-empty string"),
        ({"data": []}, "event.data must be an object or null"),
        ({"api_key_id": 5}, "event.api_key_id must be a string or null"),
        ({"organization_id": 5}, "event.organization_id must be a string or null"),
        ({"changed_fields": [1]}, "event.changed_fields must be a list of strings"),
        ({"date_updated": "soon"}, "event.date_updated must be an ISO 8601 timestamp, got 'soon'"),
    ],
)
def test_events_malformed_fields_are_named(change: dict[str, Any], message: str) -> None:
    """Each malformed key is reported by name."""
    with pytest.raises(EnvelopeError) as caught:
        event_from_dict({**CLOSE_EXAMPLE["event"], **change})

    assert message == str(caught.value)


@pytest.mark.parametrize("action", ["updated", "created"])
def test_events_null_data_is_a_missing_payload_not_an_empty_one(action: str) -> None:
    """Close's log gives a non-admin key `data: null` for events over an hour old: such an
    event is told apart from one whose data is an empty object."""
    hidden = {**CLOSE_EXAMPLE["event"], "action": action, "data": None, "previous_data": None}

    assert (True, "data", False) == (
        event_from_dict(hidden).payload_missing,
        event_from_dict(hidden).payload_key,
        event_from_dict({**hidden, "data": {}}).payload_missing,
    )


def test_events_absent_data_is_a_missing_payload() -> None:
    """Close's changelog says older events do not "include" the fields: absent counts too."""
    raw = {k: v for k, v in CLOSE_EXAMPLE["event"].items() if k not in ("data", "previous_data")}

    assert event_from_dict(raw).payload_missing


def test_events_deleted_object_needs_only_its_previous_data() -> None:
    """A deleted event's data is always null; only a null previous_data is missing."""
    deleted = {**CLOSE_EXAMPLE["event"], "action": "deleted", "data": None}

    assert (False, True, "previous_data") == (
        event_from_dict({**deleted, "previous_data": {"id": "o"}}).payload_missing,
        event_from_dict({**deleted, "previous_data": None}).payload_missing,
        event_from_dict(deleted).payload_key,
    )


def test_events_missing_payload_survives_the_trip_through_job_data() -> None:
    """A job's copy of an event without its data still says so (not an empty object)."""
    event = event_from_dict({**CLOSE_EXAMPLE["event"], "data": None, "previous_data": None})

    again = event_from_dict(event.to_dict())

    assert (event, True, None) == (again, again.payload_missing, event.to_dict()["data"])


def test_events_webhook_with_dealkeepers_own_action_is_refused() -> None:
    """`swept` is an action only dealkeeper's sweeps make; a delivery carrying it is not
    Close's."""
    body = {**CLOSE_EXAMPLE, "event": {**CLOSE_EXAMPLE["event"], "action": "swept", "sweep": "s"}}

    with pytest.raises(EnvelopeError, match=r"event\.action 'swept' is dealkeeper's own"):
        event_from_delivery(body)


def test_events_webhook_cannot_name_a_sweep() -> None:
    """A `sweep` key on a delivered event is dropped: only a sweep's own events carry one,
    and rules tell sweep events apart by it."""
    body = {**CLOSE_EXAMPLE, "event": {**CLOSE_EXAMPLE["event"], "sweep": "stale-deals"}}

    assert None is event_from_delivery(body).sweep


@pytest.mark.parametrize(
    "object_id", ["oppo_8eB77gAdf8FMy6GsNHEy84f7uoeEWv55slvUjKQZpJR", "oppo_1"]
)
def test_events_close_ids_of_any_length_are_read(object_id: str) -> None:
    """Close's ids are a prefix and base62 of whatever length Close chooses."""
    body = {**CLOSE_EXAMPLE, "event": {**CLOSE_EXAMPLE["event"], "object_id": object_id}}

    assert object_id == event_from_delivery(body).object_id


def test_events_other_objects_ids_are_not_judged() -> None:
    """Another object's event is ignored, never turned into a URL: its id is not checked, so
    a wrong guess about its shape cannot turn Close's deliveries away."""
    raw = {**CLOSE_EXAMPLE["event"], "object_type": "lead", "object_id": "lead.1"}

    assert "lead.1" == event_from_delivery({**CLOSE_EXAMPLE, "event": raw}).object_id


def test_events_rule_test_files_may_hold_a_sweeps_event() -> None:
    """An envelope read for a rule test (not a delivery) keeps its sweep: sweep rules are
    tested with such events."""
    raw = {**CLOSE_EXAMPLE["event"], "action": "swept", "sweep": "stale-deals", "object_id": "o"}

    assert "sweep:stale-deals" == event_from_envelope({**CLOSE_EXAMPLE, "event": raw}).trigger
