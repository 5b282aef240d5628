"""Receipts of our own writes, in a real Redis, with events from the fake Close.

Another integration (an import script, Zapier) edits deals through a key of its own. Its
events must never be learnt as ours, or every later event of it would be ignored for good;
only the echo of our own write, made at the moment Close took it, teaches our key's id.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.adapters.ownwrites import KNOWN_KEY, RECEIPT_PREFIX, OwnWrites
from service.core.events import Event, event_from_dict
from service.core.reconcile import OwnWrite

OURS, OURS_ID = "sk-ours-1f3a", "api_ours"
THEIRS, THEIRS_ID = "sk-zapier-77c2", "api_zapier"
EVENT_AT = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def close() -> Iterator[FakeClose]:
    with FakeClose(api_keys={OURS: OURS_ID, THEIRS: THEIRS_ID}) as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def own(redis_client: redis.Redis, clock: Clock) -> OwnWrites:
    return OwnWrites(redis_client, echo_window_sec=900, clock=clock)


@pytest.fixture
def segment(close: FakeClose) -> str:
    return close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True,
        choices=["SMB", "Enterprise", "Partner"],
    )  # fmt: skip


def _client(close: FakeClose, key: str) -> CloseClient:
    return CloseClient(key, base_url=close.url)


def _write(own: OwnWrites, close: FakeClose, oppo_id: str, update: dict[str, Any]) -> None:
    """What a job does: the receipt, the PUT with our key, then the landing recorded."""
    sent = own.expect(oppo_id, update, event_at=EVENT_AT)
    after = _client(close, OURS).update_opportunity(oppo_id, update, tz_offset_hours=None)
    record = sent.landed_on(after["date_updated"])
    assert record is not None
    with own.connection.pipeline() as pipe:
        record(pipe)
        pipe.execute()


def _last_event(close: FakeClose) -> Event:
    return event_from_dict(close.events[-1])


def _their_write(close: FakeClose, oppo_id: str, update: dict[str, Any]) -> Event:
    _client(close, THEIRS).update_opportunity(oppo_id, update, tz_offset_hours=None)
    event = _last_event(close)
    assert THEIRS_ID == event.api_key_id
    return event


def test_a_receipt_records_the_event_and_when_close_took_the_write(
    own: OwnWrites, close: FakeClose
) -> None:
    oppo = close.add_opportunity(confidence=60)

    _write(own, close, oppo["id"], {"confidence": 100})

    landed = datetime.fromisoformat(close.opportunity(oppo["id"])["date_updated"]).timestamp()
    assert (OwnWrite({"confidence": 100}, EVENT_AT.timestamp(), landed),) == own.read(oppo["id"])


def test_the_landing_replaces_only_the_receipt_it_belongs_to(
    own: OwnWrites, redis_client: redis.Redis
) -> None:
    """Should the newest receipt no longer be the one sent, its landing is not written on
    another write's receipt."""
    sent = own.expect("oppo_1", {"confidence": 100}, event_at=EVENT_AT)
    own.expect("oppo_1", {"confidence": 90}, event_at=EVENT_AT)
    record = sent.landed_on("2026-12-02T03:30:05.000000+00:00")
    assert record is not None

    with redis_client.pipeline() as pipe:
        record(pipe)
        assert [0] == pipe.execute()
    assert [None, None] == [w.landed_at for w in own.read("oppo_1")]


def test_an_answer_without_date_updated_records_no_landing(own: OwnWrites) -> None:
    sent = own.expect("oppo_1", {"confidence": 100}, event_at=EVENT_AT)

    assert (None, None) == (sent.landed_on(None), sent.landed_on("not a time"))


def test_a_receipt_keeps_only_what_close_took(own: OwnWrites, redis_client: redis.Redis) -> None:
    """Close answered 200 without taking confidence: the receipt keeps the date, landed; a
    write it took none of keeps nothing and landed at no moment."""
    stamp = "2026-12-02T03:30:05.000000+00:00"
    for oppo_id, taken in (("oppo_1", {"date_won": "2026-12-01"}), ("oppo_2", {})):
        sent = own.expect(oppo_id, {"date_won": "2026-12-01", "confidence": 100}, event_at=EVENT_AT)
        record = sent.landed_on(stamp, taken=taken)
        assert record is not None
        with redis_client.pipeline() as pipe:
            record(pipe)
            pipe.execute()

    landed = datetime.fromisoformat(stamp).timestamp()
    assert [
        (OwnWrite({"date_won": "2026-12-01"}, EVENT_AT.timestamp(), landed),),
        (OwnWrite({}, EVENT_AT.timestamp(), None),),
    ] == [own.read("oppo_1"), own.read("oppo_2")]


def test_the_echo_of_our_write_teaches_our_key(
    own: OwnWrites, close: FakeClose, redis_client: redis.Redis
) -> None:
    oppo = close.add_opportunity(confidence=60)
    _write(own, close, oppo["id"], {"confidence": 100})

    assert own.is_own(_last_event(close))
    assert {OURS_ID.encode()} == redis_client.smembers(KNOWN_KEY)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"confidence": 100}, {"value": 5000}),
        ({"confidence": 100}, {"confidence": 90}),
        ({"confidence": 100}, {"confidence": 100, "value": 5000}),
    ],
    ids=["other-field", "other-value", "our-change-and-more"],
)
def test_another_keys_different_change_is_neither_ours_nor_learnt(
    own: OwnWrites,
    close: FakeClose,
    redis_client: redis.Redis,
    ours: dict[str, Any],
    theirs: dict[str, Any],
) -> None:
    oppo = close.add_opportunity(confidence=60, value=100)
    _write(own, close, oppo["id"], ours)
    if theirs.get("confidence") == ours.get("confidence"):
        close.user_update(oppo["id"], {"confidence": 10})  # so their change is a change

    assert not own.is_own(_their_write(close, oppo["id"], theirs))
    assert set() == redis_client.smembers(KNOWN_KEY)


def test_another_key_adding_another_choice_is_not_ours(
    own: OwnWrites, close: FakeClose, redis_client: redis.Redis, segment: str
) -> None:
    """We added Enterprise; they add Partner right after: the list holds ours too, but the
    change it shows is theirs."""
    oppo = close.add_opportunity(**{f"custom.{segment}": ["SMB"]})
    _write(own, close, oppo["id"], {f"custom.{segment}.add": "Enterprise"})

    theirs = _their_write(close, oppo["id"], {f"custom.{segment}.add": "Partner"})

    assert not own.is_own(theirs)
    assert set() == redis_client.smembers(KNOWN_KEY)


def test_another_key_making_our_very_change_is_taken_for_an_echo_but_not_learnt(
    own: OwnWrites, close: FakeClose, redis_client: redis.Redis
) -> None:
    """The documented edge case: they set what we set, right after a person undid ours.
    Their event is ignored (what it sets holds already), but their key is not ours: it did
    not land at our write's moment, and their next, different change goes through."""
    oppo = close.add_opportunity(confidence=60)
    _write(own, close, oppo["id"], {"confidence": 100})
    close.user_update(oppo["id"], {"confidence": 60})

    assert own.is_own(_their_write(close, oppo["id"], {"confidence": 100}))
    assert set() == redis_client.smembers(KNOWN_KEY)
    assert not own.is_own(_their_write(close, oppo["id"], {"value": 7}))


def test_a_write_older_than_the_echo_window_is_not_matched(
    own: OwnWrites, close: FakeClose, clock: Clock
) -> None:
    oppo = close.add_opportunity(confidence=60)
    _write(own, close, oppo["id"], {"confidence": 100})
    close.user_update(oppo["id"], {"confidence": 60})
    clock.now += 901

    assert not own.is_own(_their_write(close, oppo["id"], {"confidence": 100}))


def test_receipts_left_before_they_carried_moments_still_match_echoes(
    own: OwnWrites, close: FakeClose, redis_client: redis.Redis
) -> None:
    """Receipts written by the previous release (the update alone) during an upgrade."""
    oppo = close.add_opportunity(confidence=60)
    _client(close, OURS).update_opportunity(oppo["id"], {"confidence": 100}, tz_offset_hours=None)
    redis_client.lpush(RECEIPT_PREFIX + oppo["id"], '{"confidence": 100}')

    assert own.is_own(_last_event(close))
    assert (OwnWrite({"confidence": 100}),) == own.read(oppo["id"])
