"""The deal-hygiene report as data and text: the JSON document, CSV, a table per check.

Pure, so that `dealkeeper report` and the console's report page (which keeps the document
in Redis and makes its CSV from it) show one report in the same shapes.

JSON (docs/operate.md "The deal-hygiene report" documents it):
    {"computed_at": ISO 8601, "rules_digest": str, "checks": [
        {"name", "kind": "sweep rule" | "report check", "description", "listed",
         "failing": {"deals", "value"},
         "by_owner": [{"owner", "deals", "value"}], "by_pipeline": [{"pipeline", ...}],
         "by_owner_pipeline": [{"owner", "pipeline", "deals", "value"}]}]}
Values are cents, as Close holds them. CSV: one row per check x owner x pipeline with
failing deals.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from service.core.hygiene import CheckCount, Stake, ranked

CSV_HEADER = ("check", "kind", "owner", "pipeline", "failing_deals", "value_cents")


def as_document(
    counts: Sequence[CheckCount], *, computed_at: datetime, digest: str
) -> dict[str, Any]:
    """The documented JSON shape, as data."""
    return {
        "computed_at": computed_at.isoformat(),
        "rules_digest": digest,
        "checks": [_check_json(count) for count in counts],
    }


def as_json(counts: Sequence[CheckCount], *, computed_at: datetime, digest: str) -> str:
    """The documented JSON shape."""
    return json.dumps(as_document(counts, computed_at=computed_at, digest=digest), indent=2)


def _check_json(count: CheckCount) -> dict[str, Any]:
    return {
        "name": count.name,
        "kind": count.kind,
        "description": count.description,
        "listed": count.listed,
        "failing": _stake(count.failing),
        "by_owner": [{"owner": k, **_stake(s)} for k, s in ranked(count.by_owner)],
        "by_pipeline": [{"pipeline": k, **_stake(s)} for k, s in ranked(count.by_pipeline)],
        "by_owner_pipeline": [
            {"owner": owner, "pipeline": pipeline, **_stake(s)}
            for (owner, pipeline), s in ranked(count.by_owner_pipeline)
        ],
    }


def _stake(stake: Stake) -> dict[str, int]:
    return {"deals": stake.deals, "value": stake.value}


def as_csv(counts: Sequence[CheckCount]) -> str:
    """A header, then one row per check x owner x pipeline with failing deals."""
    return csv_of_document({"checks": [_check_json(count) for count in counts]})


def csv_of_document(document: Mapping[str, Any]) -> str:
    """The CSV of a report document (as_document's shape, e.g. read back from JSON): the
    rows keep the document's order, which ranks them as `ranked` does."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for check in document.get("checks") or ():
        for row in check.get("by_owner_pipeline") or ():
            writer.writerow(
                (check["name"], check["kind"], row["owner"], row["pipeline"], row["deals"],
                 row["value"])
            )  # fmt: skip
    return out.getvalue()


def as_table(counts: Sequence[CheckCount], *, computed_at: datetime) -> list[str]:
    """Per check: the total failing and the value at stake, then per rep and per pipeline."""
    lines = [f"deal-hygiene report, computed {computed_at.isoformat()} (value: cents / 100)"]
    if not counts:
        lines.append("no sweep rules or report checks: add a report: section (docs/rules.md)")
    for count in counts:
        lines.extend(["", *_check_table(count)])
    return lines


def _check_table(count: CheckCount) -> list[str]:
    head = f"{count.name} ({count.kind})" + (f": {count.description}" if count.description else "")
    failing = count.failing
    lines = [
        head,
        f"  failing: {failing.deals} of {count.listed} deals listed;"
        f" value at stake: {_money(failing.value)}",
    ]
    for title, groups in (("owner", count.by_owner), ("pipeline", count.by_pipeline)):
        if groups:
            lines.extend(_groups(title, ranked(groups)))
    return lines


def _groups(title: str, rows: list[tuple[Any, Stake]]) -> list[str]:
    width = max(len(title), *(len(str(key)) for key, _ in rows))
    lines = [f"  {title:<{width}}  {'deals':>6}  {'value':>14}"]
    lines.extend(f"  {key!s:<{width}}  {s.deals:>6}  {_money(s.value):>14}" for key, s in rows)
    return lines


def _money(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"
