"""The per-opportunity history in a real Redis: newest first, capped, expiring, best effort."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.adapters.embedded import free_port
from service.adapters.history import (
    HISTORY_INDEX,
    HISTORY_PREFIX,
    HISTORY_REASONS_MAX,
    History,
    HistoryEntry,
    history_entry,
)
from service.core.rules import Plan, load_rules, make_plan
from tests.unit.rules_support import make_event


def entry(n: int, *, opportunity: str = "oppo_1", **changes: object) -> HistoryEntry:
    fields: dict[str, object] = {
        "event_id": f"ev_{n}",
        "opportunity_id": opportunity,
        "event_type": "opportunity.updated",
        "event_time": "2026-11-28T03:30:00+00:00",
        "processed_at": 1_800_000_000.0 + n,
        "outcome": "applied",
        "fired": ["stamp-date-won"],
        "update": {"date_won": "2026-11-27"},
        "close_status": 200,
        "detail": "",
    }
    fields.update(changes)
    return HistoryEntry(**fields)  # type: ignore[arg-type]


def test_history_reads_back_newest_first(redis_client: redis.Redis) -> None:
    """Entries come back as written, the latest first."""
    history = History(redis_client)
    for n in range(3):
        history.record(entry(n))

    assert [entry(2), entry(1), entry(0)] == history.for_opportunity("oppo_1")


def test_history_keeps_each_opportunity_apart(redis_client: redis.Redis) -> None:
    """One opportunity's history holds only its own events."""
    history = History(redis_client)
    history.record(entry(1, opportunity="oppo_a"))
    history.record(entry(2, opportunity="oppo_b"))

    assert (["ev_1"], ["ev_2"], []) == (
        [e.event_id for e in history.for_opportunity("oppo_a")],
        [e.event_id for e in history.for_opportunity("oppo_b")],
        history.for_opportunity("oppo_c"),
    )


def test_history_keeps_the_newest_entries_per_opportunity(redis_client: redis.Redis) -> None:
    """Past per_opportunity entries, the oldest are dropped."""
    history = History(redis_client, per_opportunity=3)
    for n in range(5):
        history.record(entry(n))

    assert ["ev_4", "ev_3", "ev_2"] == [
        e.event_id for e in history.for_opportunity("oppo_1", limit=10)
    ]


def test_history_limit_reads_only_the_newest(redis_client: redis.Redis) -> None:
    """limit caps how many entries are read."""
    history = History(redis_client)
    for n in range(4):
        history.record(entry(n))

    assert ["ev_3", "ev_2"] == [e.event_id for e in history.for_opportunity("oppo_1", limit=2)]


def test_history_expires_thirty_days_after_the_last_write(redis_client: redis.Redis) -> None:
    """The list carries the TTL, renewed on every write."""
    History(redis_client).record(entry(1))

    assert 30 * 24 * 3600 - 5 <= redis_client.ttl(HISTORY_PREFIX + "oppo_1") <= 30 * 24 * 3600


def test_history_forgets_the_opportunities_written_longest_ago(redis_client: redis.Redis) -> None:
    """Past max_opportunities, the histories with the oldest last write are deleted."""
    history = History(redis_client, max_opportunities=3)
    for n in range(5):
        history.record(entry(n, opportunity=f"oppo_{n}"))

    kept = [f"oppo_{n}" for n in range(5) if history.for_opportunity(f"oppo_{n}")]

    assert (["oppo_2", "oppo_3", "oppo_4"], 3) == (kept, redis_client.zcard(HISTORY_INDEX))
    assert 0 == redis_client.exists(HISTORY_PREFIX + "oppo_0")


def test_history_record_is_one_round_trip(redis_client: redis.Redis) -> None:
    """Recording sends one pipelined request (no trimming needed below the cap)."""
    calls: list[str] = []
    connection = redis.Redis(connection_pool=redis_client.connection_pool)
    original = connection.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> redis.client.Pipeline:
        calls.append("pipeline")
        return original(*args, **kwargs)

    connection.pipeline = counting_pipeline  # type: ignore[method-assign]
    History(connection).record(entry(1))

    assert ["pipeline"] == calls


def test_history_skips_entries_that_do_not_parse(redis_client: redis.Redis) -> None:
    """A stray value in the list is skipped, not an error."""
    history = History(redis_client)
    history.record(entry(1))
    redis_client.lpush(HISTORY_PREFIX + "oppo_1", "not json")

    assert ["ev_1"] == [e.event_id for e in history.for_opportunity("oppo_1")]


def test_history_record_without_redis_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis that cannot be reached loses the entry, with a warning; the job goes on."""
    unreachable = redis.Redis(
        port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )

    assert False is History(unreachable).record(entry(1))
    assert ["history_not_recorded"] == [r.getMessage() for r in caplog.records]


def test_history_entry_from_a_plan() -> None:
    """history_entry takes ids, type and time from the event and fired/update from the plan."""
    event = make_event(date_created="2026-11-28T03:30:00Z")
    plan = Plan("ev_1", "oppo_1", fired=("r",), update={"confidence": 100})

    made = history_entry(event, outcome="applied", processed_at=5.0, plan=plan, close_status=200)

    assert (
        HistoryEntry(
            "ev_1",
            "oppo_1",
            "opportunity.updated",
            "2026-11-28T03:30:00+00:00",
            5.0,
            "applied",
            ["r"],
            {"confidence": 100},
            200,
            "",
        )
        == made
    )


def test_history_entry_json_round_trip() -> None:
    """An entry survives being stored as JSON."""
    assert entry(7) == HistoryEntry.from_json(entry(7).to_json())


def test_history_job_hook_notes_a_dry_run(redis_client: redis.Redis) -> None:
    """A dry-run job is recorded with its would-be update, no Close status, and says so."""
    history = History(redis_client, clock=lambda: 9.0)
    plan = Plan("ev_1", "oppo_1", fired=("r",), update={"confidence": 100})

    history.on_job_finished(make_event(), plan, {"outcome": "dry_run"})

    assert [("dry_run", {"confidence": 100}, None, "dry run: nothing was sent to Close")] == [
        (e.outcome, e.update, e.close_status, e.detail) for e in history.for_opportunity("oppo_1")
    ]


REASON_RULES = """\
rules:
  - name: only-on-create
    trigger: opportunity.created
    if: [{confidence: 1}]
    then: [{set: {confidence: 2}}]
  - name: switched-off
    enabled: false
    if: [{confidence: 50}]
    then: [{set: {confidence: 2}}]
  - name: wants-forty
    if: [{confidence: 40}]
    then: [{set: {confidence: 60}}]
"""


def _many_rules(count: int) -> str:
    return "rules:\n" + "".join(
        f"  - name: rule-number-{n:02d}\n"
        f"    if: [{{value: {{gt: {1000 + n}}}}}]\n"
        f"    then: [{{set: {{confidence: 1}}}}]\n"
        for n in range(count)
    )


def test_history_entry_keeps_why_triggered_rules_did_not_fire() -> None:
    """Rules enabled and triggered by the event that did not fire keep their reason, without
    the condition's place; disabled rules and rules for other triggers are left out."""
    plan = make_plan(
        load_rules(REASON_RULES, "/srv/rules/x.yaml"),
        make_event(data={"confidence": 50}),
        metadata=None,
    )

    made = history_entry(make_event(), outcome="no_update", processed_at=5.0, plan=plan)

    assert ({"wants-forty": "confidence 50 eq 40 is false"}, 0) == (
        made.not_fired,
        made.not_fired_more,
    )


def test_history_entry_reasons_are_capped_and_the_rest_counted() -> None:
    """A big rules file costs an entry a bounded size: past the cap, reasons are counted."""
    plan = make_plan(
        load_rules(_many_rules(40), "x.yaml"), make_event(data={"value": 5}), metadata=None
    )

    made = history_entry(make_event(), outcome="no_update", processed_at=5.0, plan=plan)

    assert 0 < len(made.not_fired) <= HISTORY_REASONS_MAX
    assert 40 == len(made.not_fired) + made.not_fired_more
    assert len(made.to_json()) < 1024


def test_history_entry_without_reasons_stores_no_reason_fields() -> None:
    """An entry with no reasons to keep is stored as before: the empty fields left out."""
    stored = entry(3).to_json()

    assert ("not_fired" not in stored, entry(3)) == (True, HistoryEntry.from_json(stored))
