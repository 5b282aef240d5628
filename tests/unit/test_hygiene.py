"""The deal-hygiene report's counting (service/core/hygiene.py) and its text forms."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from service.core import hygieneout
from service.core.hygiene import NO_OWNER, NO_PIPELINE, JudgedDeal, Stake, count_check, ranked

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def deal(owner: str, pipeline: str, value: int | None, *, fails: bool = True) -> JudgedDeal:
    return JudgedDeal.of(
        {"user_name": owner, "pipeline_name": pipeline, "value": value}, fails=fails
    )


DEALS = [
    deal("Ada", "Sales", 100_00),
    deal("Ada", "Renewals", 250_00),
    deal("Bob", "Sales", 50_00),
    deal("Bob", "Sales", 999_00, fails=False),
    deal("Ada", "Sales", None),
]


def test_only_failing_deals_count_and_their_values_add_up() -> None:
    counted = count_check("c", "report check", DEALS)

    assert counted.listed == 5
    assert counted.failing == Stake(deals=4, value=400_00)
    assert counted.by_owner == {"Ada": Stake(3, 350_00), "Bob": Stake(1, 50_00)}
    assert counted.by_pipeline == {"Sales": Stake(3, 150_00), "Renewals": Stake(1, 250_00)}
    assert counted.by_owner_pipeline == {
        ("Ada", "Sales"): Stake(2, 100_00),
        ("Ada", "Renewals"): Stake(1, 250_00),
        ("Bob", "Sales"): Stake(1, 50_00),
    }


def test_a_deal_without_names_is_placed_by_id_or_as_unowned() -> None:
    by_id = JudgedDeal.of({"user_id": "user_1", "pipeline_id": "pipe_1", "value": 5}, fails=True)
    bare = JudgedDeal.of({"value": True}, fails=True)  # not a number: counts 0

    assert (by_id.owner, by_id.pipeline, by_id.value) == ("user_1", "pipe_1", 5)
    assert (bare.owner, bare.pipeline, bare.value) == (NO_OWNER, NO_PIPELINE, 0)


def test_groups_rank_by_value_then_deals_then_name() -> None:
    groups = {"b": Stake(1, 10), "a": Stake(1, 10), "c": Stake(5, 5), "z": Stake(3, 10)}
    assert ["z", "a", "b", "c"] == [name for name, _ in ranked(groups)]


def test_json_csv_and_table_carry_the_same_numbers() -> None:
    counted = count_check("c", "report check", DEALS, description="Why.")

    body = json.loads(hygieneout.as_json([counted], computed_at=AT, digest="abc"))
    rows = list(csv.DictReader(io.StringIO(hygieneout.as_csv([counted]))))
    table = hygieneout.as_table([counted], computed_at=AT)

    assert body["computed_at"] == "2026-12-01T09:00:00+00:00"
    assert body["checks"][0]["failing"] == {"deals": 4, "value": 400_00}
    assert body["checks"][0]["by_owner"][0] == {"owner": "Ada", "deals": 3, "value": 350_00}
    assert [("Ada", "Renewals", "1", "25000"), ("Ada", "Sales", "2", "10000"),
            ("Bob", "Sales", "1", "5000")] == [
        (r["owner"], r["pipeline"], r["failing_deals"], r["value_cents"]) for r in rows
    ]  # fmt: skip
    assert table[2:4] == [
        "c (report check): Why.",
        "  failing: 4 of 5 deals listed; value at stake: 400.00",
    ]
    assert table[5].split() == ["Ada", "3", "350.00"]
