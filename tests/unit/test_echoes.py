"""Whether an event is the echo of one of dealkeeper's writes: exactly its changes, nothing
else (another integration's change must never be taken for ours)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.core.echoes import matches_receipt
from service.core.events import Event

AT = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


def event(data: dict[str, Any], previous: dict[str, Any], changed: tuple[str, ...]) -> Event:
    return Event(
        id="ev_1", object_type="opportunity", action="updated", object_id="oppo_1",
        date_created=AT, date_updated=AT, data={"id": "oppo_1", **data},
        previous_data=previous, changed_fields=(*changed, "date_updated"), api_key_id="api_x",
    )  # fmt: skip


def test_a_set_shows_as_its_field_changed_to_its_value() -> None:
    echo = event({"confidence": 100}, {"confidence": 60}, ("confidence",))

    assert matches_receipt({"confidence": 100}, echo)
    assert not matches_receipt({"confidence": 90}, echo)
    assert not matches_receipt({"value": 100}, echo)
    assert not matches_receipt({}, echo)


def test_a_change_beside_ours_is_someone_elses() -> None:
    both = event({"confidence": 100, "value": 7}, {"confidence": 60, "value": 1},
                 ("confidence", "value"))  # fmt: skip

    assert not matches_receipt({"confidence": 100}, both)


def test_what_close_changes_along_with_a_status_is_still_our_echo() -> None:
    won = event(
        {"status_id": "stat_won", "status_label": "Won", "status_type": "won",
         "date_won": "2026-12-01"},
        {"status_id": "stat_a", "status_label": "Active", "status_type": "active",
         "date_won": None},
        ("status_id", "status_label", "status_type", "date_won"),
    )  # fmt: skip

    assert matches_receipt({"status_id": "stat_won"}, won)
    assert matches_receipt({"status": "Won"}, won)  # a label resolved by Close


@pytest.mark.parametrize(
    ("key", "before", "after", "ours"),
    [
        ("custom.cf_s.add", ["SMB"], ["SMB", "Ent"], True),
        ("custom.cf_s.add", ["SMB", "Ent"], ["SMB", "Ent", "Partner"], False),
        ("custom.cf_s.add", ["SMB"], ["SMB", "Partner"], False),
        ("custom.cf_s.remove", ["SMB", "Ent"], ["Ent"], True),
        ("custom.cf_s.remove", ["SMB", "Ent", "P"], ["Ent"], False),
        ("custom.cf_s.remove", ["SMB"], ["SMB"], False),
    ],
    ids=["add", "add-beside-theirs", "their-add", "remove", "remove-beside-theirs", "no-remove"],
)
def test_an_add_or_remove_shows_exactly_that_value_going_in_or_out(
    key: str, before: list[str], after: list[str], ours: bool
) -> None:
    value = "Ent" if key.endswith(".add") else "SMB"
    echo = event({"custom.cf_s": after}, {"custom.cf_s": before}, ("custom.cf_s",))

    assert ours == matches_receipt({key: value}, echo)


def test_an_add_without_the_previous_list_is_judged_by_the_list_now() -> None:
    shows = event({"custom.cf_s": ["Ent"]}, {}, ("custom.cf_s",))
    lacks = event({"custom.cf_s": ["SMB"]}, {}, ("custom.cf_s",))

    assert matches_receipt({"custom.cf_s.add": "Ent"}, shows)
    assert not matches_receipt({"custom.cf_s.add": "Ent"}, lacks)
    assert matches_receipt({"custom.cf_s.remove": "Ent"}, lacks)


def test_a_write_of_two_fields_is_not_echoed_by_a_change_of_one() -> None:
    one = event({"confidence": 100}, {"confidence": 60}, ("confidence",))

    assert not matches_receipt({"confidence": 100, "value": 5}, one)


def test_a_multi_value_field_emptied_or_first_filled_is_a_list_of_none_or_one() -> None:
    """Close may show an empty multi-value field as null, before or after."""
    emptied = event({"custom.cf_s": None}, {"custom.cf_s": ["SMB"]}, ("custom.cf_s",))
    filled = event({"custom.cf_s": ["Ent"]}, {"custom.cf_s": None}, ("custom.cf_s",))

    assert matches_receipt({"custom.cf_s.remove": "SMB"}, emptied)
    assert matches_receipt({"custom.cf_s.add": "Ent"}, filled)
