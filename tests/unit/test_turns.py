"""Whose turn it is: which older events of an opportunity an event waits for."""

from __future__ import annotations

import pytest

from service.core.turns import Older, others, sort_older


def test_an_event_waits_for_older_ones_queued_or_running() -> None:
    assert Older({"a": b"queued", "b": b"started"}, []) == sort_older(
        {"a": b"queued", "b": b"started"}
    )


@pytest.mark.parametrize("status", [None, b"finished", b"failed", b"canceled", b"stopped"])
def test_ended_events_are_struck_off_and_not_waited_for(status: bytes | None) -> None:
    """A parked (failed) event waits for a person; a vanished job (None) for nobody."""
    assert Older({}, ["a"]) == sort_older({"a": status})


@pytest.mark.parametrize("status", [b"scheduled", b"deferred"])
def test_events_waiting_for_their_time_neither_hold_back_nor_are_struck_off(
    status: bytes,
) -> None:
    """A retry scheduled for later would hold every newer event of the deal for minutes;
    it stays listed, and waits its own turn when it runs."""
    assert Older({}, []) == sort_older({"a": status})


def test_a_job_is_not_its_own_predecessor() -> None:
    assert ["a", "c"] == others([b"a", "b", b"c"], "b")
