"""Reading Close's event log through the fake: cursor paging, actions, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.adapters.eventlog import first_page, iter_events, read_events, read_events_bounded
from tests.adapters.conftest import API_KEY


def test_eventlog_pages_through_every_event_newest_first(fake_close: FakeClose) -> None:
    """More events than one page (50) are all read, following cursor_next."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    oppo = fake_close.add_opportunity(value=0)
    for step in range(120):
        fake_close.now = start + timedelta(seconds=step)
        fake_close.user_update(oppo["id"], {"value": step + 1})
    client = CloseClient(API_KEY, base_url=fake_close.url)

    events = list(iter_events(client, since=start, action="updated"))

    assert 120 == len(events)
    assert [120, 1] == [events[0]["data"]["value"], events[-1]["data"]["value"]]
    assert 3 == len(fake_close.requests_matching("GET", "event/"))


def test_eventlog_reads_each_action_and_orders_by_creation(fake_close: FakeClose) -> None:
    """created, updated and deleted are read separately and merged oldest first."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    fake_close.now = start
    created = fake_close.user_create({"value": 1})
    fake_close.now = start + timedelta(minutes=1)
    fake_close.user_update(created["object_id"], {"value": 2})
    fake_close.now = start + timedelta(minutes=2)
    fake_close.user_delete(created["object_id"])
    client = CloseClient(API_KEY, base_url=fake_close.url)

    events = read_events(client, since=start - timedelta(minutes=5))

    assert ["created", "updated", "deleted"] == [e["action"] for e in events]


def test_eventlog_since_excludes_older_events(fake_close: FakeClose) -> None:
    """Only events updated at or after `since` come back."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    oppo = fake_close.add_opportunity(value=0)
    for minute in range(3):
        fake_close.now = start + timedelta(minutes=minute)
        fake_close.user_update(oppo["id"], {"value": minute + 1})
    client = CloseClient(API_KEY, base_url=fake_close.url)

    events = read_events(client, since=start + timedelta(minutes=1), actions=["updated"])

    assert [2, 3] == [e["data"]["value"] for e in events]


def test_eventlog_first_page_reads_one_window_in_one_request(fake_close: FakeClose) -> None:
    """first_page asks once for the updates in [since, until): the events outside are not
    listed, and no cursor is followed."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    oppo = fake_close.add_opportunity(value=0)
    for hour in range(3):
        fake_close.now = start + timedelta(hours=hour)
        fake_close.user_update(oppo["id"], {"value": hour + 1})
    client = CloseClient(API_KEY, base_url=fake_close.url)

    events = first_page(client, since=start + timedelta(hours=1), until=start + timedelta(hours=2))

    assert [2] == [e["data"]["value"] for e in events]
    assert 1 == len(fake_close.requests_matching("GET", "event/"))


def _updates(fake_close: FakeClose, count: int) -> datetime:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    oppo = fake_close.add_opportunity(value=0)
    for step in range(count):
        fake_close.now = start + timedelta(seconds=step)
        fake_close.user_update(oppo["id"], {"value": step + 1})
    return start


def test_eventlog_bounded_read_stops_at_its_event_budget(fake_close: FakeClose) -> None:
    """120 updates, a budget of 100 (two whole pages, a third follows): the newest 100, and
    it says it stopped short; a budget that all of them fit in reads them all and says it is
    complete."""
    start = _updates(fake_close, 120)
    client = CloseClient(API_KEY, base_url=fake_close.url)

    short = read_events_bounded(
        client, since=start, max_events=100, deadline=float("inf"), actions=["updated"]
    )
    whole = read_events_bounded(
        client, since=start, max_events=120, deadline=float("inf"), actions=["updated"]
    )

    assert (100, False) == (len(short.events), short.complete)
    assert [21, 120] == [short.events[0]["data"]["value"], short.events[-1]["data"]["value"]]
    assert (120, True) == (len(whole.events), whole.complete)
    assert 2 + 3 == len(fake_close.requests_matching("GET", "event/"))


def test_eventlog_bounded_read_stops_at_its_deadline(fake_close: FakeClose) -> None:
    """The clock is read before each page: past the deadline after the first page, the
    read stops there and says so."""
    start = _updates(fake_close, 120)
    client = CloseClient(API_KEY, base_url=fake_close.url)
    ticks = iter([0.0, 5.0, 5.0, 5.0])

    found = read_events_bounded(
        client, since=start, max_events=1000, deadline=1.0, clock=lambda: next(ticks),
        actions=["updated"],
    )  # fmt: skip

    assert (50, False) == (len(found.events), found.complete)
    assert 1 == len(fake_close.requests_matching("GET", "event/"))
