"""dealkeeper's own earlier write is not someone else's change, through real jobs.

A deal is won on Monday (event A), reopened, and won again on Wednesday (event B). A's PUT
is held in flight by the fake Close until B has happened and is queued, so A's write lands
after B: B's job must then write B's answer, not keep A's as if a person had typed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from rq import Queue

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.processing import jobs
from service.processing.worker import make_worker
from tests.waiting import DEADLINE_SEC

A_AT = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)  # 22:30 on Sunday the 29th in New York
REOPENED_AT = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
B_AT = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)  # 22:30 on Tuesday the 1st in New York
A_DATE, B_DATE = "2026-11-29", "2026-12-01"  # stamp-date-won's answers


@pytest.fixture
def work(settings: Settings) -> Callable[..., None]:
    """A burst worker over what is queued; `hooks` run after each job, before the next."""

    def run(*hooks: Callable[..., None]) -> None:
        worker = make_worker(settings)
        jobs.installed().on_finish.extend(hooks)
        worker.work(burst=True, with_scheduler=False)

    return run


def _queue(raw: Mapping[str, Any] | None, queue: Queue) -> None:
    assert raw is not None
    enqueue_event(event_from_dict(dict(raw)), queue=queue)


def _won_on_monday(fake: FakeClose, queue: Queue) -> dict[str, Any]:
    """A deal a person moved to Won on Monday (event A, queued)."""
    oppo = fake.add_opportunity(confidence=60)
    fake.now = A_AT
    _queue(fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")}), queue)
    return oppo


def _win_again_while_a_is_in_flight(
    fake: FakeClose, queue: Queue, oppo_id: str, **b_changes: Any
) -> threading.Thread:
    """Hold A's PUT; once it is held, reopen the deal and win it again (B), queue B, then let
    A's PUT land."""
    hold = fake.hold_next(method="PUT", path_prefix="opportunity/")

    def meanwhile() -> None:
        if not hold.wait_held(DEADLINE_SEC):
            return  # the test fails on the date; releasing would hide nothing
        fake.now = REOPENED_AT
        fake.user_update(oppo_id, {"status_id": fake.status_id("Active")})
        fake.now = B_AT
        _queue(fake.user_update(oppo_id, {"status_id": fake.status_id("Won"), **b_changes}), queue)
        fake.now = None  # what follows happens later than B, by Close's clock too
        hold.release()

    thread = threading.Thread(target=meanwhile, name="person-in-close")
    thread.start()
    return thread


def test_the_later_events_answer_wins_over_our_slow_write_for_an_older_one(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None]
) -> None:
    oppo = _won_on_monday(fake_close, queue)
    person = _win_again_while_a_is_in_flight(fake_close, queue, oppo["id"])

    work()
    person.join()

    puts = [r.json.get("date_won") for r in fake_close.requests_matching("PUT")]
    assert (B_DATE, [A_DATE, B_DATE]) == (fake_close.opportunity(oppo["id"])["date_won"], puts)


def test_what_the_later_event_held_is_written_back_after_our_slow_write(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None]
) -> None:
    """The person typed B's date (and full confidence) as they won it again: B's plan had
    nothing to write, but A's late stamp replaced the person's date, so B's job puts it
    back."""
    oppo = _won_on_monday(fake_close, queue)
    person = _win_again_while_a_is_in_flight(
        fake_close, queue, oppo["id"], date_won=B_DATE, confidence=100
    )

    work()
    person.join()

    assert B_DATE == fake_close.opportunity(oppo["id"])["date_won"]


def test_a_persons_edit_after_our_slow_write_is_kept(
    fake_close: FakeClose, queue: Queue, work: Callable[..., None]
) -> None:
    """A's stamp lands after B, then a person types a date before B's job runs: theirs."""
    oppo = _won_on_monday(fake_close, queue)
    person = _win_again_while_a_is_in_flight(fake_close, queue, oppo["id"])
    typed = threading.Event()

    def type_a_date(*_: Any) -> None:
        if not typed.is_set() and fake_close.opportunity(oppo["id"])["date_won"] == A_DATE:
            typed.set()
            fake_close.user_update(oppo["id"], {"date_won": "2026-12-04"})

    work(type_a_date)
    person.join()

    assert (True, "2026-12-04") == (typed.is_set(), fake_close.opportunity(oppo["id"])["date_won"])
