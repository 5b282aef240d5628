"""FakeClose lists an opportunity's status changes as Close's status-change activities."""

from __future__ import annotations

from datetime import UTC, datetime

from fakeclose import FakeClose
from tests.fakeclose.conftest import Api

WON_AT = datetime(2026, 3, 3, 4, 10, tzinfo=UTC)


def test_fake_activities_list_status_changes_newest_first(fake: FakeClose, api: Api) -> None:
    """Created, then won, then reopened: three activities, the latest first, with old and
    new status and the moment; other edits are not status changes."""
    fake.now = datetime(2026, 3, 1, tzinfo=UTC)
    created = fake.user_create({"confidence": 10})
    oppo_id = created["object_id"]
    fake.now = WON_AT
    fake.user_update(oppo_id, {"status_id": fake.status_id("Won")})
    fake.user_update(oppo_id, {"confidence": 90})
    fake.now = datetime(2026, 3, 5, tzinfo=UTC)
    fake.user_update(oppo_id, {"status_id": fake.status_id("Active")})

    page = api.get("activity/status_change/opportunity/", opportunity_id=oppo_id).json()

    assert [
        ("won", "active", "2026-03-05T00:00:00.000000+00:00"),
        ("active", "won", "2026-03-03T04:10:00.000000+00:00"),
        (None, "active", "2026-03-01T00:00:00.000000+00:00"),
    ] == [(a["old_status_type"], a["new_status_type"], a["activity_at"]) for a in page["data"]]
    assert False is page["has_more"]


def test_fake_activities_need_an_opportunity(fake: FakeClose, api: Api) -> None:
    """Without opportunity_id the fake answers 400, saying so."""
    answer = api.get("activity/status_change/opportunity/")

    assert (400, {"error": "opportunity_id is required"}) == (answer.status_code, answer.json())


def test_fake_activities_of_a_seeded_deal_are_none(fake: FakeClose, api: Api) -> None:
    """A deal seeded without an event has no status change on record."""
    oppo = fake.add_opportunity(status_id=fake.status_id("Won"))

    page = api.get("activity/status_change/opportunity/", opportunity_id=oppo["id"]).json()

    assert [] == page["data"]
