"""Engine: microseconds to plan one event against 10, 100 and 1,000 rules with a mix of
operators, against plain Python closures testing the same conditions (the floor for any
rule engine written in Python).

    python3 dev.py bench engine [--seconds 1]

Rules cycle through eq, ne, in, not_in, gt, gte, lt, lte, contains, not_contains, matches,
empty, changed, changed_from, changed_to, older_than, newer_than, `any` and `not`; about
one rule in ten fires, so plans merge updates as they do in production. Goal: 1,000 rules
in under 5 ms.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.common import Result, fmt_ratio
from service.core.events import Event
from service.core.rules import RuleSet, load_rules, make_plan

SIZES = (10, 100, 1000)
GOAL_MS = 5.0
MAX_ROUNDS = 100_000

Test = Callable[[dict[str, Any], int], bool]


def _prev(data: dict[str, Any]) -> dict[str, Any]:
    previous: dict[str, Any] = data.get("_previous", {})
    return previous


# (condition YAML, plain Python test of the same) per operator; `{n}` varies per rule.
CONDITIONS: list[tuple[str, Test]] = [
    ("status_type: {{eq: won}}", lambda d, n: d.get("status_type") == "won"),
    ("status_label: {{ne: Lost{n}}}", lambda d, n: d.get("status_label") != f"Lost{n}"),
    ("status_type: {{in: [won, active]}}", lambda d, n: d.get("status_type") in ("won", "active")),
    ("status_label: {{not_in: [Lost, X{n}]}}",
     lambda d, n: d.get("status_label") not in ("Lost", f"X{n}")),
    ("value: {{gt: {n}}}", lambda d, n: (d.get("value") or 0) > n),
    ("value: {{gte: {n}}}", lambda d, n: (d.get("value") or 0) >= n),
    ("confidence: {{lt: {n}}}", lambda d, n: (d.get("confidence") or 0) < n),
    ("confidence: {{lte: {n}}}", lambda d, n: (d.get("confidence") or 0) <= n),
    ("note: {{contains: word{n}}}", lambda d, n: f"word{n}" in (d.get("note") or "")),
    ("note: {{not_contains: other{n}}}", lambda d, n: f"other{n}" not in (d.get("note") or "")),
    ("lead_name: {{matches: '^Acme {n}'}}",
     lambda d, n: bool(re.search(f"^Acme {n}", d.get("lead_name") or ""))),
    ("date_lost: {{empty: true}}", lambda d, n: not d.get("date_lost")),
    ("value: {{changed: true}}", lambda d, n: "value" in d.get("_changed", ())),
    ("status_type: {{changed_from: active}}",
     lambda d, n: _prev(d).get("status_type") == "active"),
    ("status_type: {{changed_to: won}}", lambda d, n: d.get("status_type") == "won"),
    ("date_created: {{older_than: {n}d}}", lambda d, n: True),
    ("date_created: {{newer_than: {n}d}}", lambda d, n: True),
    ("any: [{{value: {{gt: {n}}}}}, {{confidence: {{eq: {n}}}}}]",
     lambda d, n: (d.get("value") or 0) > n or d.get("confidence") == n),
    ("not: [{{status_label: {{eq: Lost{n}}}}}]", lambda d, n: d.get("status_label") != f"Lost{n}"),
]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench engine", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per size and side")
    return parser.parse_args(argv)


def rules_text(count: int) -> str:
    """`count` rules of three conditions each; every tenth one fires on the bench event."""
    lines = ["timezone: America/New_York", "rules:"]
    for n in range(count):
        picks = [CONDITIONS[(n * 3 + k) % len(CONDITIONS)][0].format(n=n) for k in range(3)]
        if n % 10 == 0:
            picks = [
                "status_type: {changed_to: won}",
                f"value: {{gte: {n}}}",
                "date_lost: {empty: true}",
            ]
        lines += [f"  - name: rule-{n}", "    trigger: opportunity.updated", "    if:"]
        lines += [f"      - {p}" for p in picks]
        lines += ["    then:", f"      - set: {{confidence: {n % 100}}}"]
    return "\n".join(lines) + "\n"


def plain_tests(count: int) -> list[list[tuple[Test, int]]]:
    return [
        [(CONDITIONS[(n * 3 + k) % len(CONDITIONS)][1], n) for k in range(3)] for n in range(count)
    ]


def bench_event() -> Event:
    moment = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    data = {"id": "oppo_b", "status_type": "won", "status_label": "Won", "value": 500_000,
            "confidence": 60, "note": "word5 word50", "lead_name": "Acme 7", "date_lost": None,
            "date_created": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    return Event(
        id="ev_b", object_type="opportunity", action="updated", object_id="oppo_b",
        date_created=moment, date_updated=moment, data=data,
        previous_data={"status_type": "active", "value": 400_000},
        changed_fields=("status_id", "status_label", "status_type", "value"),
    )  # fmt: skip


def time_per_call(call: Callable[[], object], seconds: float) -> float:
    """Microseconds per call, repeated for about `seconds` (bounded in rounds too)."""
    call()
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds and rounds < MAX_ROUNDS:
        call()
        rounds += 1
    return (time.perf_counter() - started) / rounds * 1e6


def plain_call(tests: list[list[tuple[Test, int]]], event: Event) -> Callable[[], object]:
    data = {**event.data, "_changed": event.changed_fields, "_previous": event.previous_data}
    return lambda: [all(test(data, n) for test, n in rule) for rule in tests]


def _planner(ruleset: RuleSet, event: Event) -> Callable[[], object]:
    return lambda: make_plan(ruleset, event, metadata=None)


def run(seconds: float) -> Result:
    event = bench_event()
    figures: dict[str, Any] = {}
    engine_us: dict[int, float] = {}
    ratios = []
    for size in SIZES:
        ruleset: RuleSet = load_rules(rules_text(size), "bench.yaml")
        ours = time_per_call(_planner(ruleset, event), seconds)
        plain = time_per_call(plain_call(plain_tests(size), event), seconds)
        engine_us[size] = ours
        ratios.append(plain / ours)
        figures[f"{size} rules: engine / plain us"] = f"{ours:.0f} / {plain:.0f}"
    ms = engine_us[1000] / 1000
    figures["1,000 rules ms"] = round(ms, 2)
    return Result(
        name="engine",
        figures=figures,
        ratio=f"plain/engine at 10, 100, 1,000 rules = {', '.join(fmt_ratio(r) for r in ratios)}; "
        f"1,000 rules {ms:.2f} ms (goal < {GOAL_MS:g} ms)",
        goals={"1,000 rules < 5 ms": ms < GOAL_MS},
    )


def main(argv: list[str]) -> int:
    run(**vars(parse(argv))).show()
    return 0
