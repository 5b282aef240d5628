"""The totals every `GET opportunity/` answer carries, over all matching deals.

Close's Opportunities page: "All opportunity list responses contain the following aggregate
values about all the matching objects (regardless of pagination / limits)". The real Close
(Nango's recording of 2026-06-19, tests/contract/fixtures/opportunity-list.json) adds each
money total `_formatted` too, and formats a zero total as null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from fakeclose.patch import dollars

PERIODS = ("one_time", "monthly", "annual")
MONTHS_A_YEAR = 12


def list_aggregates(deals: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """total_results, count_by_value_period, total_value_*, expected_value_* (and _formatted)."""
    matching = list(deals)
    totals = {period: 0 for period in PERIODS}
    expected = {period: 0 for period in PERIODS}
    for deal in matching:
        period = deal.get("value_period")
        if period in totals:
            totals[period] += deal.get("value") or 0
            expected[period] += deal.get("expected_value") or 0
    counts = Counter(str(d["value_period"]) for d in matching if d.get("value_period"))
    result: dict[str, Any] = {"total_results": len(matching), "count_by_value_period": counts}
    for name, sums in (("total_value", totals), ("expected_value", expected)):
        annualized = sums["one_time"] + sums["annual"] + sums["monthly"] * MONTHS_A_YEAR
        for period, cents in (*sums.items(), ("annualized", annualized)):
            result[f"{name}_{period}"] = cents
            result[f"{name}_{period}_formatted"] = dollars(cents) if cents else None
    return result
