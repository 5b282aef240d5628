"""`dealkeeper report [PATH] [--json|--csv]` against the fake Close (real HTTP) holding 36
deals of three owners in two pipelines: counts and value at stake per check, per owner and
per pipeline, computed here from the seeded deals, and never a write to Close."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from fakeclose import FakeClose
from service.commands.cli import cli
from tests.integration.sweeps_support import write_rules

OWNERS = {"user_ada": "Ada Lovelace", "user_bob": "Bob Moog", "user_cyd": "Cyd Charisse"}
RULES = """\
timezone: America/New_York
rules:
  - name: low-confidence-raised
    schedule: "0 0 29 2 *"
    find: {status_type: active}
    if:
      - confidence: {lt: 20}
    then:
      - set: {value_period: monthly}
report:
  - name: big-and-unsure
    description: Open deals of $2,000 or more below 50% confidence.
    find: {status_type: active}
    if:
      - value: {gte: 200000}
      - confidence: {lt: 50}
"""
Deal = Mapping[str, Any]


@pytest.fixture
def deals(fake_close: FakeClose) -> list[Deal]:
    return seed_deals(fake_close)


def seed_deals(fake_close: FakeClose) -> list[Deal]:
    """36 deals: owners and pipelines take turns, values and confidences vary, one in six
    is won (no check lists it), and one in four already recurs monthly: the sweep rule
    fires for it but would not change it, so it does not fail the rule."""
    with fake_close.store.lock:
        fake_close.store.user_names.update(OWNERS)
    renewals = fake_close.add_pipeline("Renewals")
    pipelines = [fake_close.default_pipeline_id, renewals]
    seeded: list[Deal] = []
    for i in range(36):
        pipeline = pipelines[i % 2]
        status = "Won" if i % 6 == 5 else "Active"
        seeded.append(
            fake_close.add_opportunity(
                status_id=fake_close.status_id(status, pipeline_id=pipeline),
                user_id=list(OWNERS)[i % 3],
                value=(i + 1) * 25_000,
                confidence=(i * 7) % 60,
                value_period="monthly" if i % 4 == 0 else "one_time",
            )
        )
    return seeded


@pytest.fixture
def env(fake_close: FakeClose, tmp_path: Path) -> dict[str, str]:
    return {
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake_close.url,
        "DEALKEEPER_RULES": str(write_rules(tmp_path / "rules", RULES)),
        "CLOSE_RATE_LIMIT": "500",
    }


def failing(deals: list[Deal], check: str) -> list[Deal]:
    """The deals that fail `check`, judged here by hand from the seeded deals."""
    active = [d for d in deals if d["status_type"] == "active"]
    if check == "low-confidence-raised":
        return [d for d in active if d["confidence"] < 20 and d["value_period"] != "monthly"]
    return [d for d in active if d["value"] >= 200_000 and d["confidence"] < 50]


def grouped(found: list[Deal], key: str) -> dict[str, tuple[int, int]]:
    counts = Counter(d[key] for d in found)
    return {
        name: (n, sum(d["value"] for d in found if d[key] == name)) for name, n in counts.items()
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["report", *args], env=env)


@pytest.mark.parametrize("check", ["low-confidence-raised", "big-and-unsure"])
def test_report_json_counts_failing_deals_per_owner_and_pipeline(
    env: dict[str, str], deals: list[Deal], fake_close: FakeClose, check: str
) -> None:
    expected = failing(deals, check)
    assert 3 < len(expected) < 30  # the seed makes both checks fail some deals, not all
    held = [d for d in deals if d["confidence"] < 20 and d["value_period"] == "monthly"]
    assert any(d["status_type"] == "active" for d in held)  # fired, changes nothing

    result = run(env, "--json")

    assert 0 == result.exit_code, result.output
    body = json.loads(result.output)
    found = {c["name"]: c for c in body["checks"]}[check]
    assert found["listed"] == sum(1 for d in deals if d["status_type"] == "active")
    assert found["failing"] == {"deals": len(expected), "value": sum(d["value"] for d in expected)}
    by_owner = {g["owner"]: (g["deals"], g["value"]) for g in found["by_owner"]}
    assert grouped(expected, "user_name") == by_owner
    by_pipeline = {g["pipeline"]: (g["deals"], g["value"]) for g in found["by_pipeline"]}
    assert grouped(expected, "pipeline_name") == by_pipeline
    assert {"Sales", "Renewals"} == set(by_pipeline)
    assert [] == fake_close.requests_matching("PUT")
    assert [] == fake_close.requests_matching("POST")


def test_report_json_has_the_documented_shape(env: dict[str, str], deals: list[Deal]) -> None:
    body = json.loads(run(env, "--json").output)

    assert {"computed_at", "rules_digest", "checks"} == set(body)
    assert [("low-confidence-raised", "sweep rule"), ("big-and-unsure", "report check")] == [
        (c["name"], c["kind"]) for c in body["checks"]
    ]
    check = body["checks"][1]
    assert "Open deals of $2,000 or more below 50% confidence." == check["description"]
    keys = {"name", "kind", "description", "listed", "failing", "by_owner", "by_pipeline"}
    assert keys | {"by_owner_pipeline"} == set(check)
    assert {"owner", "pipeline", "deals", "value"} == set(check["by_owner_pipeline"][0])


def test_report_csv_has_a_row_per_check_owner_and_pipeline(
    env: dict[str, str], deals: list[Deal]
) -> None:
    result = run(env, "--csv")

    assert 0 == result.exit_code, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    header = ["check", "kind", "owner", "pipeline", "failing_deals", "value_cents"]
    assert header == result.output.splitlines()[0].split(",")
    for check in ("low-confidence-raised", "big-and-unsure"):
        expected = failing(deals, check)
        cells = Counter((d["user_name"], d["pipeline_name"]) for d in expected)
        mine = {
            (r["owner"], r["pipeline"]): int(r["failing_deals"])
            for r in rows
            if r["check"] == check
        }
        assert dict(cells) == mine
        assert sum(d["value"] for d in expected) == sum(
            int(r["value_cents"]) for r in rows if r["check"] == check
        )


def test_report_table_shows_each_check_then_reps_and_pipelines(
    env: dict[str, str], deals: list[Deal]
) -> None:
    expected = failing(deals, "big-and-unsure")
    value = sum(d["value"] for d in expected)

    result = run(env)

    assert 0 == result.exit_code, result.output
    lines = result.output.splitlines()
    at = lines.index(
        "big-and-unsure (report check): Open deals of $2,000 or more below 50% confidence."
    )
    listed = sum(1 for d in deals if d["status_type"] == "active")
    assert (
        f"  failing: {len(expected)} of {listed} deals listed;"
        f" value at stake: {value // 100:,}.{value % 100:02d}"
    ) == lines[at + 1]
    assert lines[at + 2].split() == ["owner", "deals", "value"]
    assert any(line.split()[:2] == ["Ada", "Lovelace"] for line in lines[at + 3 : at + 6])
    assert "low-confidence-raised (sweep rule)" in lines


def test_a_bad_report_section_exits_1_with_positions(env: dict[str, str]) -> None:
    broken = RULES.replace("      - confidence: {lt: 50}\n", "    then: [{set: {confidence: 1}}]\n")
    folder = write_rules(Path(env["DEALKEEPER_RULES"]), broken)

    result = run(env)

    assert 1 == result.exit_code
    assert (
        f"{folder}/sweeps.yaml:16:5: report checks only count the deals that fail them;"
        " remove then (a sweep rule, under rules: with a schedule, changes deals)"
    ) in result.output.splitlines()


def test_report_says_what_to_do_when_close_cannot_be_read(
    env: dict[str, str], deals: list[Deal]
) -> None:
    """A key Close refuses: exit 1 with what to check next, never showing the key."""
    result = run({**env, "CLOSE_API_KEY": "api_wrong"})

    assert 1 == result.exit_code
    assert "cannot read Close's opportunities for the report" in result.output
    assert "api_wrong" not in result.output  # the key is never shown


def test_report_with_redis_keeps_the_workers_shared_rate_limit(
    env: dict[str, str], deals: list[Deal], fake_close: FakeClose, redis_url: str,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    """With REDIS_URL every request of the report takes a slot of the pacer the workers
    share (adapters/ratelimit.py), so a report never pushes a worker's write into a 429."""
    result = run({**env, "REDIS_URL": redis_url}, "--json")

    assert 0 == result.exit_code, result.output
    slots = sum(
        int(redis_client.hget(key, "seq") or 0)
        for key in redis_client.scan_iter()
        if redis_client.type(key) == b"hash"
    )
    assert len(fake_close.requests) == slots > 0
