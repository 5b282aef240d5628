"""`dealkeeper explain` and `backtest` against the fake Close and its event log: read-only."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from fakeclose import FakeClose
from service.commands.cli import cli
from service.commands.replay import _progress
from tests.conftest import RULES_DIR

NOW = datetime.now(UTC).replace(microsecond=0)
# 02:30 UTC yesterday: within any recent window, and a time at which New York is still on
# the day before, so the date_won Close sets (its UTC day, in the fake) is never the one
# stamp-date-won writes, whatever the hour the suite runs at.
YESTERDAY_0230 = NOW.replace(hour=2, minute=30, second=0) - timedelta(days=1)


def close_env(fake: FakeClose) -> dict[str, str]:
    return {"CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY, "CLOSE_API_URL": fake.url}


def run(args: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output.splitlines()


@pytest.fixture
def organization(fake_close: FakeClose) -> FakeClose:
    """The fake Close with the Segment field the shipped rules use."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )
    return fake_close


def won_event(fake: FakeClose, *, at: datetime, value: int = 500000) -> dict[str, object]:
    """A person moves a new deal to Won at `at`; returns the event."""
    fake.now = at - timedelta(minutes=1)
    oppo = fake.user_create({"value": value, "confidence": 50})
    fake.now = at
    event = fake.user_update(str(oppo["object_id"]), {"status_id": fake.status_id("Won")})
    assert event is not None
    return event


def test_explain_event_id_reads_the_log_and_writes_nothing(organization: FakeClose) -> None:
    """--event-id fetches the event from Close; every rule is told; no PUT is made."""
    event = won_event(organization, at=datetime(2026, 11, 28, 3, 30, tzinfo=UTC))
    oppo = event["object_id"]

    args = ["explain", "--event-id", str(event["id"]), "--rules", str(RULES_DIR)]
    code, lines = run(args, close_env(organization))
    shown = ("event ", "FIRED      stamp", "  yes  status_type went", "update:", "  date_won =")

    assert 0 == code
    assert [
        f"event {event['id']}: opportunity.updated of {oppo} at 2026-11-28 03:30:00 UTC",
        "FIRED      stamp-date-won (" + str(RULES_DIR) + "/deal-hygiene.yaml:6)",
        '  yes  status_type went "active" -> "won"; test: changed_to "won"  ('
        + str(RULES_DIR)
        + "/deal-hygiene.yaml:10:9)",
        f"update: one PUT opportunity/{oppo}/ with x-tz-offset -5",
        '  date_won = "2026-11-27"  (from stamp-date-won)',
        "  confidence = 100  (from full-confidence-when-won)",
    ] == [line for line in lines if line.startswith((*shown, "  confidence ="))]
    assert "metadata: from Close (3 statuses, 1 custom fields)" in lines[2]
    assert [] == organization.requests_matching("PUT")


def test_explain_opportunity_treats_its_state_as_a_fresh_update(organization: FakeClose) -> None:
    """--opportunity judges the current state: nothing changed, so changed_to cannot fire."""
    oppo = organization.add_opportunity(status_id=organization.status_id("Won"), confidence=60)

    code, lines = run(["explain", "--opportunity", oppo["id"]], close_env(organization))

    assert 0 == code
    assert "changed: no field listed" in lines
    assert [
        "not fired  stamp-date-won (rules/deal-hygiene.yaml:6)",
        "FIRED      full-confidence-when-won (rules/deal-hygiene.yaml:22)",
    ] == [line for line in lines if line.startswith(("FIRED", "not fired  stamp"))]
    assert [] == organization.requests_matching("PUT")


def test_explain_event_file_runs_offline(tmp_path: Path) -> None:
    """An event file needs no Close: metadata is none, names are matched as written."""
    body = {
        "event": {
            "id": "ev_file",
            "object_type": "opportunity",
            "object_id": "oppo_file",
            "action": "created",
            "date_created": "2026-03-08T06:30:00Z",
            "data": {"status_type": "won", "confidence": 60},
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(body), encoding="utf-8")

    code, lines = run(["explain", str(path)], {"CLOSE_API_KEY": ""})

    assert 0 == code
    assert "metadata: none (CLOSE_API_KEY is not set" in lines[1]
    assert "update: one PUT opportunity/oppo_file/ with x-tz-offset -5" in lines


def test_explain_unknown_event_says_the_log_keeps_30_days(organization: FakeClose) -> None:
    """An event id Close does not know is a clear error, not a traceback."""
    code, lines = run(["explain", "--event-id", "ev_nope"], close_env(organization))

    assert (1, ["Error: Close has no event ev_nope (the event log keeps 30 days)"]) == (code, lines)


def test_explain_needs_exactly_one_event_source(tmp_path: Path) -> None:
    """Two sources (or none) are a usage error."""
    code, lines = run(["explain", "--event-id", "ev_1", "--opportunity", "oppo_1"], {})

    assert 2 == code
    assert "give exactly one of EVENT_FILE, --event-id and --opportunity" in lines[-1]


def test_backtest_counts_what_each_rule_would_have_done(organization: FakeClose) -> None:
    """Over the event log's last 7 days: a table per rule, totals, samples; no PUT."""
    won_event(organization, at=YESTERDAY_0230 - timedelta(hours=1))
    won_event(organization, at=YESTERDAY_0230, value=2_000_000)
    won_event(organization, at=NOW - timedelta(days=10))  # before the window

    code, lines = run(["backtest", "--since", "7d"], close_env(organization))

    assert 0 == code
    assert [
        "rule                        seen   fired  writes",
        "stamp-date-won                 4       2       2",
        "tag-big-deals                  2       1       1",
        "full-confidence-when-won       4       2       2",
        "",
        "4 events read, 2 would have made a PUT (0 ignored, 0 without data, 0 unreadable)",
    ] == lines[2:8]
    assert [] == organization.requests_matching("PUT")


def test_backtest_diff_shows_what_a_change_adds_and_removes(
    organization: FakeClose, tmp_path: Path
) -> None:
    """--diff: writes only the new rules make (+), only the old ones make (-)."""
    won_event(organization, at=NOW - timedelta(hours=1))
    changed = (RULES_DIR / "deal-hygiene.yaml").read_text(encoding="utf-8")
    (tmp_path / "new.yaml").write_text(changed.replace("{lt: 100}", "{lt: 50}"), encoding="utf-8")

    code, lines = run(
        ["backtest", "--rules", str(tmp_path), "--diff", str(RULES_DIR)], close_env(organization)
    )

    assert 0 == code
    assert [
        f"difference from {RULES_DIR} to {tmp_path}, over 2 events: 1 would get a different update",
        f"  + 0 writes only {tmp_path} makes",
        f"  - 1 writes only {RULES_DIR} makes",
    ] == [line for line in lines if line.startswith(("difference", "  + 0", "  - 1"))]


def test_backtest_refuses_more_than_the_event_log_keeps(organization: FakeClose) -> None:
    """--since beyond 30 days is refused with the limit, before anything is read."""
    code, lines = run(["backtest", "--since", "45d"], close_env(organization))

    assert 2 == code
    assert "Close's event log keeps 30d of events; use --since 30d or less" in lines[-1]
    assert [] == organization.requests_matching("GET", "event/")


def test_backtest_waits_out_rate_limits(
    organization: FakeClose, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 from Close is waited out (the CLI waits up to a minute), not a failure."""
    won_event(organization, at=NOW - timedelta(hours=1))
    organization.set_rate_limit(2, window_sec=0.3, group="read")

    code, _ = run(["backtest"], close_env(organization))

    assert 0 == code
    assert "close_request_retried" in [r.getMessage() for r in caplog.records]


def test_backtest_progress_only_on_a_terminal() -> None:
    """The progress bar is drawn on a terminal and left out when output is piped."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()

    assert [1, 2] == list(_progress([1, 2], label="replaying", stream=terminal))
    assert [1, 2] == list(_progress([1, 2], label="replaying", stream=pipe))
    assert ("replaying" in terminal.getvalue(), "") == (True, pipe.getvalue())
