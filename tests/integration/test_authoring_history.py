"""`dealkeeper history oppo_...` against a real Redis: newest first, as text or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis
from click.testing import CliRunner

from fakeclose import FakeClose
from service.adapters.history import History, HistoryEntry
from service.commands.cli import cli
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.processing import jobs
from tests.conftest import RULES_DIR


def entry(n: int, **changes: object) -> HistoryEntry:
    fields: dict[str, object] = {
        "event_id": f"ev_{n}",
        "opportunity_id": "oppo_1",
        "event_type": "opportunity.updated",
        "event_time": f"2026-11-28T03:3{n}:00+00:00",
        "processed_at": 1_795_836_600.0 + n,  # 2026-11-28 03:30 UTC
        "outcome": "applied",
        "fired": ["stamp-date-won"],
        "update": {"date_won": "2026-11-27"},
        "close_status": 200,
        "detail": "",
    }
    fields.update(changes)
    return HistoryEntry(**fields)  # type: ignore[arg-type]


def test_history_command_prints_newest_first(redis_url: str, redis_client: redis.Redis) -> None:
    """Each entry shows when, the outcome, the event, the rules fired, why others did not,
    and Close's answer."""
    history = History(redis_client)
    history.record(entry(0))
    history.record(
        entry(
            1,
            outcome="no_update",
            fired=[],
            update={},
            close_status=None,
            not_fired={"stamp-date-won": "status_type unchanged"},
            not_fired_more=2,
        )
    )

    result = CliRunner().invoke(cli, ["history", "oppo_1"], env={"REDIS_URL": redis_url})

    assert (
        0,
        [
            "history of oppo_1, newest first (2 entries):",
            "2026-11-28 03:30:01 UTC  no_update        opportunity.updated ev_1",
            "    event at 2026-11-28T03:31:00+00:00",
            "    fired: none",
            "    not fired: stamp-date-won: status_type unchanged",
            "    2 more did not fire: dealkeeper explain ev_1",
            "2026-11-28 03:30:00 UTC  applied          opportunity.updated ev_0",
            "    event at 2026-11-28T03:30:00+00:00",
            "    fired: stamp-date-won",
            '    update: {"date_won": "2026-11-27"} -> Close 200',
        ],
    ) == (result.exit_code, result.output.splitlines())


def test_history_command_json_is_a_list_of_entries(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """--json prints the entries as stored, newest first."""
    history = History(redis_client)
    history.record(entry(0))
    history.record(entry(1))

    result = CliRunner().invoke(cli, ["history", "oppo_1", "--json"], env={"REDIS_URL": redis_url})

    assert ["ev_1", "ev_0"] == [e["event_id"] for e in json.loads(result.output)]


def test_history_command_without_entries_says_so(redis_url: str) -> None:
    """An opportunity without history is a plain sentence and exit 0."""
    result = CliRunner().invoke(cli, ["history", "oppo_none"], env={"REDIS_URL": redis_url})

    assert (0, "no history for oppo_none in the last 30 days\n") == (
        result.exit_code,
        result.output,
    )


def test_history_hook_records_what_a_job_did(redis_client: redis.Redis, redis_url: str) -> None:
    """History.record_finished, installed as a JobContext finish writer, records each job."""
    with FakeClose() as fake:
        oppo = fake.add_opportunity(confidence=50)
        fake.now = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
        event = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
        settings = Settings(
            close_api_key=FakeClose.DEFAULT_API_KEY,
            close_api_url=fake.url,
            redis_url=redis_url,
            rules_path=str(RULES_DIR),
        )
        context = jobs.build_context(settings, connection=redis_client)
        # build_context installs the writer; this one differs only in its clock.
        context.finish_writers[:] = [History(redis_client, clock=lambda: 5.0).record_finished]
        assert event is not None

        jobs.handle_event(event_from_dict(event), context=context)

    assert [
        HistoryEntry(
            event_id=event["id"],
            opportunity_id=oppo["id"],
            event_type="opportunity.updated",
            event_time="2026-11-28T03:30:00+00:00",
            processed_at=5.0,
            outcome="applied",
            fired=["stamp-date-won", "full-confidence-when-won"],
            update={"date_won": "2026-11-27", "confidence": 100},
            close_status=200,
            # The fake Close has no Segment field: the one rule that did not fire says so.
            not_fired={"tag-big-deals": "unknown custom field 'Segment'"},
        )
    ] == History(redis_client).for_opportunity(oppo["id"])
