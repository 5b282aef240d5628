"""Keyed paging over a sweep's deals: each page starts at the second of the last deal
listed, passes over the ones already listed, and backs into `_skip` only inside a crowd."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.processing.sweeps.paging import Cursor, PagingError, advance, page_params, second_of
from service.processing.sweeps.progress import Progress


def deal(number: int, created: str) -> dict[str, Any]:
    return {"id": f"oppo_{number}", "date_created": created}


def test_sweep_paging_first_page_is_ordered_and_limited() -> None:
    """The first page asks for the sweep's filters, oldest first, one page's worth."""
    params = page_params(
        {"status_type": "active"}, cursor=Cursor(), limit=200, fields="id,confidence"
    )

    assert {
        "status_type": "active",
        "_order_by": "date_created",
        "_limit": "200",
        "_fields": "id,confidence",
    } == params


def test_sweep_paging_next_page_starts_at_the_last_deals_second() -> None:
    """After a page, the next starts at the second its last deal was created in."""
    page = [deal(1, "2026-01-01T10:00:00.5+00:00"), deal(2, "2026-01-02T08:30:15.250000+00:00")]

    fresh, cursor = advance(Cursor(), items=page)

    assert (page, Cursor("2026-01-02T08:30:15+00:00", ("oppo_2",))) == (fresh, cursor)
    assert {"_order_by": "date_created", "_limit": "2",
            "date_created__gte": "2026-01-02T08:30:15+00:00"} == page_params(
        {}, cursor=cursor, limit=2, fields=None
    )  # fmt: skip


def test_sweep_paging_passes_over_deals_already_listed() -> None:
    """Deals of that second seen on the page before are not listed again."""
    cursor = Cursor("2026-01-02T08:30:15+00:00", ("oppo_2",))
    page = [deal(2, "2026-01-02T08:30:15.25+00:00"), deal(3, "2026-01-02T08:30:15.9+00:00"),
            deal(4, "2026-01-03T00:00:00+00:00")]  # fmt: skip

    fresh, after = advance(cursor, items=page)

    assert ["oppo_3", "oppo_4"] == [d["id"] for d in fresh]
    assert Cursor("2026-01-03T00:00:00+00:00", ("oppo_4",)) == after


def test_sweep_paging_crowd_in_one_second_uses_skip_with_an_overlap() -> None:
    """Past half a page of deals in one second, `_skip` moves on, half a page short."""
    crowd = tuple(f"oppo_{n}" for n in range(150))
    cursor = Cursor("2026-01-02T08:30:15+00:00", crowd)

    params = page_params({}, cursor=cursor, limit=200, fields=None)

    assert ("50", "2026-01-02T08:30:15+00:00") == (params["_skip"], params["date_created__gte"])


def test_sweep_paging_crowd_page_adds_to_the_deals_seen() -> None:
    """A page wholly inside the cursor's second adds its new deals to those seen."""
    cursor = Cursor("2026-01-02T08:30:15+00:00", ("oppo_1", "oppo_2"))
    page = [deal(n, "2026-01-02T08:30:15.1+00:00") for n in (2, 3, 4)]

    fresh, after = advance(cursor, items=page)

    assert (["oppo_3", "oppo_4"], ("oppo_1", "oppo_2", "oppo_3", "oppo_4")) == (
        [d["id"] for d in fresh],
        after.seen,
    )


def test_sweep_paging_keeps_the_finds_own_later_lower_bound() -> None:
    """A find bound later than the cursor's second stays (the narrower of the two)."""
    cursor = Cursor("2026-01-01T00:00:00+00:00", ("oppo_1",))
    filters = {"date_created__gte": "2026-02-01T05:00:00+00:00"}

    params = page_params(filters, cursor=cursor, limit=200, fields=None)

    assert "2026-02-01T05:00:00+00:00" == params["date_created__gte"]


def test_sweep_paging_empty_page_keeps_the_cursor() -> None:
    """Nothing listed: the cursor does not move."""
    cursor = Cursor("2026-01-01T00:00:00+00:00", ("oppo_1",))

    assert ([], cursor) == advance(cursor, items=[])


def test_sweep_paging_refuses_a_deal_without_date_created() -> None:
    """A deal Close listed without date_created cannot be placed: the run stops, saying so."""
    with pytest.raises(PagingError, match="oppo_9 without a usable date_created"):
        second_of({"id": "oppo_9"})


def test_sweep_paging_cursor_round_trips_through_a_checkpoint() -> None:
    """A cursor saved as JSON is the same cursor read back."""
    cursor = Cursor("2026-01-01T00:00:00+00:00", ("oppo_1", "oppo_2"))

    assert cursor == Cursor.from_dict(cursor.to_dict())


def test_sweep_paging_page_size_close_serves_round_trips_through_a_checkpoint() -> None:
    """The page size Close was found to serve is kept in the checkpoint, so a resumed run
    asks for it (and backs off in a crowd by half of it); older checkpoints have none."""
    progress = Progress(cursor=Cursor("2026-01-01T00:00:00+00:00", ("oppo_1",)), page_size=40)
    older = {k: v for k, v in progress.to_dict().items() if k != "page_size"}

    assert (40, None) == (
        Progress.from_dict(json.loads(json.dumps(progress.to_dict()))).page_size,
        Progress.from_dict(older).page_size,
    )
