"""Which keys of a PUT Close took, judged from its answer: absent or unchanged is not taken,
the value sent or any value Close normalised it to is."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.rules.model import CustomField, Metadata
from service.core.writecheck import field_names, not_taken

BEFORE: dict[str, Any] = {
    "id": "oppo_1",
    "confidence": 60,
    "value": 5000,
    "date_won": None,
    "date_lost": None,
    "status_id": "stat_active",
    "status_label": "Active",
    "user_id": "user_a",
    "note": "",
    "custom.cf_tags": ["A"],
}


def answer(**changes: Any) -> dict[str, Any]:
    return {**BEFORE, **changes}


def test_a_field_holding_what_was_sent_is_taken() -> None:
    """The answer shows the values sent: nothing is reported."""
    update = {"confidence": 100, "date_won": "2026-11-27", "status_id": "stat_won"}

    found = not_taken(
        update,
        before=BEFORE,
        after=answer(confidence=100, date_won="2026-11-27", status_id="stat_won"),
    )

    assert () == found


def test_a_field_left_as_it_was_is_not_taken() -> None:
    """date_lost stays null and confidence stays 60 although both were sent."""
    update = {"date_lost": "2026-11-28T03:30:00+00:00", "confidence": 0, "value": 1}

    found = not_taken(update, before=BEFORE, after=answer(value=1))

    assert ("date_lost", "confidence") == found


def test_a_key_absent_from_the_answer_is_not_taken() -> None:
    """An unknown key (a misspelt field, a custom field Close dropped) is not in the answer."""
    update = {"colour": "red", "custom.cf_source": "Web"}

    found = not_taken(update, before=BEFORE, after=answer())

    assert ("colour", "custom.cf_source") == found


@pytest.mark.parametrize(
    ("field", "sent", "returned"),
    [
        ("value", 5000.0, 5000),  # a float sent, an int answered
        ("confidence", 100, 100.0),
        ("date_won", "2026-11-27", "2026-11-27T00:00:00+00:00"),  # a date as a datetime's day
        ("date_lost", "2026-11-27T22:30:00-05:00", "2026-11-28T03:30:00+00:00"),  # in UTC
        ("date_lost", "2026-11-28T03:30:00", "2026-11-28T03:30:00.000000+00:00"),  # naive: UTC
        ("custom.cf_owner", "Jane Doe", "user_jane"),  # a name sent, Close keeps the id
        ("note", "  hello ", "hello"),  # trimmed: changed all the same
        ("custom.cf_tags", ["B", "A"], ["A", "B"]),  # a list in another order
        ("custom.cf_tags", "B", ["B"]),  # one value of a multi-value field, as a list
    ],
)
def test_a_value_close_normalised_is_taken(field: str, sent: Any, returned: Any) -> None:
    """The answer holds the value in Close's own form, or anything other than before."""
    found = not_taken({field: sent}, before=BEFORE, after=answer(**{field: returned}))

    assert () == found


def test_a_status_given_by_label_is_taken_when_the_answer_has_that_label() -> None:
    """`status: Won` (the deprecated label key) reads back as status_label."""
    taken = not_taken({"status": "Won"}, before=BEFORE, after=answer(status_label="Won"))
    dropped = not_taken({"status": "Won"}, before=BEFORE, after=answer())

    assert ((), ("status",)) == (taken, dropped)


@pytest.mark.parametrize(
    ("key", "after_values", "expected"),
    [
        ("custom.cf_tags.add", ["A", "B"], ()),
        ("custom.cf_tags.add", ["A"], ("custom.cf_tags.add",)),
        ("custom.cf_tags.remove", [], ()),
        ("custom.cf_tags.remove", ["A"], ("custom.cf_tags.remove",)),
        ("custom.cf_tags.add", ["A", "user_b"], ()),  # held in another form: the list changed
    ],
)
def test_an_add_or_remove_is_taken_when_the_answer_holds_or_lacks_the_value(
    key: str, after_values: list[str], expected: tuple[str, ...]
) -> None:
    """`.add` B is taken when B is in the list; `.remove` A when A is gone; else only when
    the list changed at all."""
    value = "A" if key.endswith(".remove") else "B"
    after = answer(**{"custom.cf_tags": after_values}) if after_values else answer()
    if not after_values:
        del after["custom.cf_tags"]  # an emptied multi-value field reads back as unset

    found = not_taken({key: value}, before=BEFORE, after=after)

    assert expected == found


def test_an_unset_is_taken_when_the_field_is_gone_or_null() -> None:
    """`custom.cf_x: null` unsets: an answer without the field took it."""
    after = answer()
    del after["custom.cf_tags"]

    found = not_taken({"custom.cf_tags": None, "user_id": None}, before=BEFORE, after=after)

    assert ("user_id",) == found


def test_a_custom_field_in_the_nested_dict_form_is_read_by_id_or_name() -> None:
    """An answer in the deprecated `custom` dict form, keyed by id or by the field's name."""
    metadata = Metadata(custom_fields=(CustomField("cf_seg", "Segment", "text"),))
    update = {"custom.cf_seg": "Enterprise", "custom.cf_src": "Web"}
    after = {**BEFORE, "custom": {"Segment": "Enterprise", "cf_src": "Web"}}

    found = not_taken(update, before=BEFORE, after=after, metadata=metadata)

    assert () == found


def test_an_empty_answer_says_nothing_was_missed() -> None:
    """No answer body to judge (a dry run's {}): nothing is reported."""
    found = not_taken({"confidence": 100}, before=BEFORE, after={})

    assert () == found


def test_field_names_are_the_fields_written_once_each() -> None:
    """`.add` and `.remove` of one field name that field once."""
    names = field_names(("date_lost", "custom.cf_tags.add", "custom.cf_tags.remove", "status"))

    assert ["date_lost", "custom.cf_tags", "status"] == names
