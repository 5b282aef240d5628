"""A sweep's listing against the fake Close holding 2,400 deals with a past: each filter
reaches Close as the right parameter and lists exactly the right deals, and paging neither
skips nor repeats a deal, even while deals change under it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from service.adapters.close import CloseClient
from service.core.rules import load_rules
from service.processing.sweeps.paging import PagingStalledError
from tests.integration.sweeps_support import (
    MOMENT,
    ListingRecorder,
    list_sweep,
    matching,
    moment_of,
    sweep_rules,
)

NY_MIDNIGHT_JAN_1 = "2026-01-01T05:00:00+00:00"
Test = Callable[[Mapping[str, Any]], bool]


@pytest.fixture(scope="module")
def aged() -> Iterator[FakeClose]:
    """One fake Close for the module's read-only tests: 2,400 deals created over the year
    before MOMENT, a few of them monthly, owned by another user or on a known lead."""
    with FakeClose() as fake:
        ids = seed_aged(fake, count=2400, now=MOMENT, seed=7)
        for oppo_id in ids[:40]:
            fake.store.opportunities[oppo_id]["value_period"] = "monthly"
        for oppo_id in ids[40:70]:
            fake.store.opportunities[oppo_id]["user_id"] = "user_other"
        for oppo_id in ids[70:75]:
            fake.store.opportunities[oppo_id]["lead_id"] = "lead_known"
        yield fake


def older(field: str, days: int) -> Test:
    return lambda o: moment_of(o, field) <= MOMENT - timedelta(days=days)


FILTERS: list[tuple[str, dict[str, str], Test]] = [
    ("{status_type: active}", {"status_type": "active"}, lambda o: o["status_type"] == "active"),
    ("{status_type: {in: [won, lost]}}", {"status_type__in": "won,lost"},
     lambda o: o["status_type"] in ("won", "lost")),
    ("{status: Lost}", {"status_label": "Lost"}, lambda o: o["status_label"] == "Lost"),
    ("{user_id: user_other}", {"user_id": "user_other"}, lambda o: o["user_id"] == "user_other"),
    ("{lead_id: lead_known}", {"lead_id": "lead_known"}, lambda o: o["lead_id"] == "lead_known"),
    ("{value_period: monthly}", {"value_period": "monthly"},
     lambda o: o["value_period"] == "monthly"),
    ("{date_updated: {older_than: 60d}}", {"date_updated__lte": "2026-01-08T10:00:00+00:00"},
     older("date_updated", 60)),
    ("{date_created: {newer_than: 30d}}", {"date_created__gt": "2026-02-07T10:00:00+00:00"},
     lambda o: not older("date_created", 30)(o)),
    ("{date_created: {lt: 2026-01-01}}", {"date_created__lt": NY_MIDNIGHT_JAN_1},
     lambda o: o["date_created"] < NY_MIDNIGHT_JAN_1),
    ("{date_won: {gte: today-30d}}", {"date_won__gte": "2026-02-07"},
     lambda o: (o["date_won"] or "") >= "2026-02-07"),
]  # fmt: skip


@pytest.mark.parametrize(("find", "params", "test"), FILTERS, ids=[f[0] for f in FILTERS])
def test_sweep_listing_filter_reaches_close_and_lists_exactly_its_deals(
    aged: FakeClose, find: str, params: dict[str, str], test: Test
) -> None:
    """The filter is sent as Close's parameter and the deals listed are exactly those the
    filter names (read from the fake's own store)."""
    aged.clear_requests()
    rules = load_rules(sweep_rules(find), "rules/x.yaml")

    progress, recorder = list_sweep(aged, rules)
    first = aged.requests_matching("GET", "opportunity/")[0].query

    assert params == {k: v for k, v in first.items() if not k.startswith("_")}
    assert matching(aged, test) == set(recorder.listed)
    assert (len(set(recorder.listed)),) * 2 == (progress.tally.listed, progress.total)


def test_sweep_listing_asks_only_for_the_fields_rules_read(aged: FakeClose) -> None:
    """`_fields` holds what the job needs, what the rule reads, and what it writes."""
    aged.clear_requests()
    rules = load_rules(
        sweep_rules("{status_type: active}", condition="[{value: {gt: 5}}]"), "rules/x.yaml"
    )

    list_sweep(aged, rules)
    fields = aged.requests_matching("GET", "opportunity/")[0].query["_fields"]

    assert ["id", "date_created", "date_updated", "status_type", "value", "confidence"] == (
        fields.split(",")
    )


def test_sweep_listing_asks_for_whole_deals_when_the_rule_reads_custom_fields(
    aged: FakeClose,
) -> None:
    """Close documents `_fields` naming custom fields for leads only: a rule that reads one
    lists whole deals, so no custom field can be missing from what it judges."""
    aged.clear_requests()
    rules = load_rules(
        sweep_rules("{status_type: active}", condition="[{custom.Segment: {empty: true}}]"),
        "rules/x.yaml",
    )

    list_sweep(aged, rules)

    assert [] == [r.query for r in aged.requests_matching("GET", "opp") if "_fields" in r.query]


@pytest.mark.parametrize(("owned", "pages"), [(200, [200]), (201, [200, 2])])
def test_sweep_listing_page_edges(fake_close: FakeClose, owned: int, pages: list[int]) -> None:
    """Among 2,400 deals, exactly a page's worth takes one request; one more takes a second
    that starts with the last deal of the first (its second) and adds the one left."""
    ids = seed_aged(fake_close, count=2400, now=MOMENT, seed=3)
    for oppo_id in ids[:owned]:
        fake_close.store.opportunities[oppo_id]["user_id"] = "user_other"
    rules = load_rules(sweep_rules("{user_id: user_other}"), "rules/x.yaml")

    progress, recorder = list_sweep(fake_close, rules)

    assert (pages, owned, set(ids[:owned])) == (
        [len(p) for p in recorder.pages],
        progress.tally.listed,
        set(recorder.listed),
    )


def test_sweep_listing_every_page_starts_where_the_last_ended(aged: FakeClose) -> None:
    """2,400 deals in pages of 200: each deal is taken once, and each page asks for the
    deals created from the second of the previous page's last deal on."""
    aged.clear_requests()
    rules = load_rules(sweep_rules("{date_created: {older_than: 1d}}"), "rules/x.yaml")

    progress, recorder = list_sweep(aged, rules)
    starts = [r.query.get("date_created__gte") for r in aged.requests_matching("GET", "opp")]
    last_seconds = [_second(aged, page[-1]) for page in recorder.pages[:-1]]

    assert (2400, set(aged.store.opportunities)) == (progress.tally.listed, set(recorder.listed))
    assert [None, *last_seconds] == starts


def _second(fake: FakeClose, oppo_id: str) -> str:
    created = moment_of(fake.store.opportunities[oppo_id], "date_created")
    return created.replace(microsecond=0).isoformat()


@pytest.fixture
def fresh_close(fake_close: FakeClose) -> FakeClose:
    """A fake Close of the test's own (these tests change deals), with 2,400 aged deals."""
    seed_aged(fake_close, count=2400, now=MOMENT, seed=11)
    return fake_close


def test_sweep_listing_deals_leaving_the_filter_midway_do_not_shift_the_pages(
    fresh_close: FakeClose,
) -> None:
    """After each page, the deals it listed are written out of the filter (as the sweep's
    jobs do) and one deal not listed yet is moved out by a person: every other deal is
    still taken exactly once, where offset paging would skip a page's worth each time."""
    fake = fresh_close
    before = matching(fake, lambda o: o["status_type"] == "active")
    moved_out: list[str] = []

    def change(page: int) -> None:
        for oppo_id in recorder.pages[-1]:
            fake.user_update(oppo_id, {"status_id": fake.status_id("Won")})
        later = sorted(before - set(recorder.listed) - set(moved_out))
        if later:
            moved_out.append(later[len(later) // 2])
            fake.user_update(moved_out[-1], {"status_id": fake.status_id("Lost")})

    recorder = ListingRecorder(
        CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake.url), after_page=change
    )
    rules = load_rules(sweep_rules("{status_type: active}"), "rules/x.yaml")
    progress, _ = list_sweep(fake, rules, recorder=recorder)

    assert len(before) > 1000
    assert before - set(moved_out) == set(recorder.listed)
    assert len(before) - len(moved_out) == progress.tally.listed


def test_sweep_listing_crowd_created_in_one_second_is_listed_whole(fake_close: FakeClose) -> None:
    """450 deals imported in one second, 20 of each page written out of the filter before
    the next: every deal is taken once; inside the crowd, pages move on with `_skip`,
    half a page short of the deals already seen."""
    stamp = "2025-06-01T12:00:00.000000+00:00"
    ids = [fake_close.add_opportunity(date_created=stamp)["id"] for _ in range(450)]

    def write_some(page: int) -> None:
        for oppo_id in recorder.pages[-1][:20]:
            fake_close.user_update(oppo_id, {"status_id": fake_close.status_id("Won")})

    client = CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake_close.url)
    recorder = ListingRecorder(client, after_page=write_some)
    rules = load_rules(sweep_rules("{status_type: active}"), "rules/x.yaml")
    progress, _ = list_sweep(fake_close, rules, recorder=recorder)
    skips = [r.query.get("_skip") for r in fake_close.requests_matching("GET", "opportunity/")]

    assert (set(ids), 450) == (set(recorder.listed), progress.tally.listed)
    assert [None, "100", "220"] == skips[:3]


def test_sweep_listing_close_serving_fewer_than_asked_reaches_every_deal(
    fake_close: FakeClose,
) -> None:
    """Close may serve fewer deals a page than `_limit` asks (its maximum varies by
    resource): 130 deals at 40 a page are all listed, the run ending only when has_more
    is false, and the pages after the first ask for what Close serves."""
    ids = seed_aged(fake_close, count=400, now=MOMENT, seed=13)
    for oppo_id in ids[:130]:
        fake_close.store.opportunities[oppo_id]["user_id"] = "user_other"
    fake_close.set_opportunity_listing(page_cap=40)
    rules = load_rules(sweep_rules("{user_id: user_other}"), "rules/x.yaml")

    progress, recorder = list_sweep(fake_close, rules)
    limits = [r.query["_limit"] for r in fake_close.requests_matching("GET", "opportunity/")]

    assert (set(ids[:130]), 130, True) == (
        set(recorder.listed),
        progress.tally.listed,
        progress.done,
    )
    assert ["200", "40", "40", "40"] == limits


def test_sweep_listing_crowd_in_one_second_with_close_serving_fewer_than_asked(
    fake_close: FakeClose,
) -> None:
    """100 deals imported in one second, Close serving 40 a page: inside the crowd the
    pages move on by half of what Close serves, and every deal is listed once."""
    stamp = "2025-06-01T12:00:00.000000+00:00"
    ids = [fake_close.add_opportunity(date_created=stamp)["id"] for _ in range(100)]
    fake_close.set_opportunity_listing(page_cap=40)
    rules = load_rules(sweep_rules("{status_type: active}"), "rules/x.yaml")

    progress, recorder = list_sweep(fake_close, rules)
    skips = [r.query.get("_skip") for r in fake_close.requests_matching("GET", "opportunity/")]

    assert (set(ids), 100) == (set(recorder.listed), progress.tally.listed)
    assert [None, "20", "40", "60"] == skips


def test_sweep_listing_stops_with_an_error_when_more_pages_bring_nothing(
    fake_close: FakeClose,
) -> None:
    """A Close that keeps answering has_more true with an empty page stops the run with an
    error saying so after one such page, instead of asking again forever."""
    fake_close.add_opportunity()
    empty = {"data": [], "has_more": True}
    fake_close.fail_next(1000, status=200, method="GET", path_prefix="opportunity/", body=empty)
    rules = load_rules(sweep_rules("{status_type: active}"), "rules/x.yaml")

    with pytest.raises(PagingStalledError) as stalled:
        list_sweep(fake_close, rules)

    assert 1 == len(fake_close.requests_matching("GET", "opportunity/"))
    assert str(stalled.value).startswith(
        "Close answered has_more=true to GET opportunity/ with a page listing no deal not"
    )
