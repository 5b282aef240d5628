"""`dealkeeper sweep NAME [--dry-run]` against the fake Close holding 2,400 deals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from rq import Worker

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from service.commands.cli import cli
from service.config.settings import Settings
from tests.conftest import REPO
from tests.integration.sweeps_support import STALE_RULES, matching, moment_of, write_rules
from tests.waiting import wait_for

# Far from any real run time, so a worker started by a test never runs it on schedule.
RULES = STALE_RULES.replace("older_than: 60d", "older_than: 240d").replace(
    '"0 6 * * 1-5"', '"0 0 29 2 *"'
)


@pytest.fixture
def env(settings: Settings, fake_close: FakeClose, tmp_path: Path) -> dict[str, str]:
    """2,400 deals aged up to now, the stale-deals sweep, and the environment the CLI reads
    (no REDIS_URL: a dry run does without Redis)."""
    seed_aged(fake_close, count=2400, now=datetime.now(UTC), seed=31)
    return {
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake_close.url,
        "DEALKEEPER_RULES": str(write_rules(tmp_path / "rules", RULES)),
        "CLOSE_RATE_LIMIT": "500",
    }


def counts(output: str) -> dict[str, int]:
    """The summary table as label -> count."""
    rows = re.findall(r"^  ([a-z ()]+?)\s{2,}(\d+)", output, flags=re.MULTILINE)
    return {label: int(count) for label, count in rows}


def stale_now(fake: FakeClose) -> set[str]:
    cutoff = datetime.now(UTC) - timedelta(days=240)

    def stale(o: Mapping[str, Any]) -> bool:
        quiet = moment_of(o, "date_updated") <= cutoff
        return o["status_type"] == "active" and quiet and o["confidence"] > 10

    return matching(fake, stale)


def test_sweep_cli_dry_run_prints_the_summary_and_writes_nothing(
    env: dict[str, str], fake_close: FakeClose
) -> None:
    """A dry run lists every page, prints listed/matched/would update and the first five
    planned updates, and neither writes to Close nor needs Redis."""
    expected = stale_now(fake_close)

    result = CliRunner().invoke(cli, ["sweep", "stale-deals", "--dry-run"], env=env)
    lines = result.output.splitlines()

    assert 0 == result.exit_code, result.output
    assert lines[0].startswith("sweep stale-deals (")
    assert lines[0].endswith(" UTC (dry run: nothing queued, nothing written)")
    assert re.fullmatch(
        r"Close's filters: status_type=active, date_updated__lte=\S+\+00:00", lines[1]
    )
    found = {k: v for k, v in counts(result.output).items() if k != "listed"}
    n = len(expected)
    assert {"matched": n, "would update": n, "already correct": 0, "failed": 0} == found
    assert f"planned updates (first 5 of {len(expected)}, would send):" in lines
    assert [] == fake_close.requests_matching("PUT")


def test_sweep_cli_unknown_sweep_suggests_the_right_name(env: dict[str, str]) -> None:
    """A misspelt name exits 1 naming the likely sweep and the sweeps there are."""
    result = CliRunner().invoke(cli, ["sweep", "stale-deal", "--dry-run"], env=env)

    assert (1, "Error: no sweep rule named 'stale-deal'; did you mean 'stale-deals'? "
            "(sweeps: stale-deals)\n") == (result.exit_code, result.output)  # fmt: skip


def test_sweep_cli_rule_on_events_is_not_a_sweep(env: dict[str, str]) -> None:
    """Naming a rule that runs on events says so."""
    path = RULES + "  - name: on-events\n    then: [{set: {confidence: 1}}]\n"
    write_rules(Path(env["DEALKEEPER_RULES"]), path)

    result = CliRunner().invoke(cli, ["sweep", "on-events", "--dry-run"], env=env)

    assert "Error: rule 'on-events' runs on events, not as a sweep; sweeps: stale-deals\n" == (
        result.output
    )


@pytest.fixture
def worker(env: dict[str, str], redis_url: str, tmp_path: Path) -> Iterator[None]:
    """One real worker process on the test's Redis."""
    variables = {**os.environ, **env, "REDIS_URL": redis_url, "DEALKEEPER_CATCHUP_INTERVAL": "0"}
    with (tmp_path / "worker.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "worker"], env=variables, cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    connection = redis.Redis.from_url(redis_url)
    wait_for(lambda: Worker.count(connection=connection) == 1, what="the worker to register")
    yield
    process.terminate()
    process.wait(timeout=30)


def test_sweep_cli_run_queues_jobs_and_reports_what_the_workers_did(
    env: dict[str, str], fake_close: FakeClose, redis_url: str, worker: None
) -> None:
    """Without --dry-run the deals go to the workers as jobs; the command waits for them
    and counts the deals updated."""
    expected = stale_now(fake_close)

    result = CliRunner().invoke(cli, ["sweep", "stale-deals"], env={**env, "REDIS_URL": redis_url})

    assert 0 == result.exit_code, result.output
    assert (len(expected), len(expected), 0) == tuple(
        counts(result.output)[k] for k in ("matched", "updated", "failed")
    )
    assert len(expected) == len(fake_close.requests_matching("PUT"))
