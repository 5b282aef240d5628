"""What `dealkeeper sweep` prints: jobs counted by how they ended, the summary table, and
planned updates with custom fields by name; and a run's checkpoint read back whole."""

from __future__ import annotations

from datetime import UTC, datetime

from service.core.events import event_from_dict, swept_event
from service.core.rules import load_rules
from service.processing.sweeps.paging import Cursor
from service.processing.sweeps.progress import PlannedUpdate, Progress, Tally
from service.processing.sweeps.report import (
    Outcomes,
    count_outcomes,
    describe_update,
    format_summary,
)

MOMENT = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
RULE = load_rules(
    "rules:\n  - name: s\n    schedule: '0 6 * * *'\n    find: {status_type: active}\n"
    "    then: [{set: {confidence: 10}}]\n",
    "rules/x.yaml",
).rules[0]


def test_sweep_report_counts_jobs_by_how_they_ended() -> None:
    """Applied, nothing left to write, parked, deleted meanwhile and not done yet."""
    results = {
        "a": ("finished", {"outcome": "applied"}),
        "b": ("finished", {"outcome": "stale"}),
        "c": ("finished", {"outcome": "no_update"}),
        "d": ("failed", None),
        "e": ("finished", {"outcome": "opportunity_gone"}),
        "f": ("queued", None),
        "g": ("scheduled", None),  # waiting for a retry
    }

    found = count_outcomes(results, job_ids=[*results, "gone-from-redis"])

    assert Outcomes(updated=1, already_correct=2, failed=1, gone=1, pending=3) == found


def test_sweep_report_counts_writes_close_did_not_take_apart_from_gone_deals() -> None:
    """A write Close answered 200 without taking every field is neither updated nor gone,
    and its row says where the fields are named."""
    results = {"a": ("finished", {"outcome": "not_taken"})}
    progress = Progress(total=1, tally=Tally(listed=1, matched=1, to_update=1))

    found = count_outcomes(results, job_ids=list(results))
    lines = format_summary(
        RULE, moment=MOMENT, progress=progress, outcomes=found, filters={}, names={}
    )

    assert Outcomes(not_taken=1) == found
    assert (
        "  not taken              1  (Close answered 200 without taking some fields: "
        "`dealkeeper history OPPORTUNITY_ID`)"
    ) in lines


def test_sweep_report_dry_run_table() -> None:
    """A dry run's table: listed of the total, matched, would update, already correct."""
    tally = Tally(listed=788, matched=639, to_update=600, already_correct=39)
    progress = Progress(total=788, tally=tally, done=True)

    lines = format_summary(
        RULE, moment=MOMENT, progress=progress, outcomes=None, filters={}, names={}
    )

    assert [
        "sweep s (rules/x.yaml:2) as of 2026-03-09 10:00:00 UTC (dry run: nothing queued, "
        "nothing written)",
        "Close's filters: none (every opportunity)",
        "",
        "  listed               788  of 788",
        "  matched              639",
        "  would update         600",
        "  already correct       39",
        "  failed                 0",
    ] == lines


def test_sweep_report_run_table_adds_what_the_jobs_found() -> None:
    """After a run, deals correct when listed and when their job ran add up; rows for
    parked and unfinished jobs say where to look."""
    progress = Progress(
        total=50, tally=Tally(listed=50, matched=20, to_update=18, already_correct=2)
    )
    outcomes = Outcomes(updated=15, already_correct=1, failed=1, pending=1)

    lines = format_summary(
        RULE, moment=MOMENT, progress=progress, outcomes=outcomes, filters={"a": "b"}, names={}
    )

    assert [
        "  listed                50  of 50",
        "  matched               20",
        "  updated               15",
        "  already correct        3  (1 of them by the time their job ran)",
        "  failed                 1  (parked: `dealkeeper failed list`)",
        "  not done yet           1  (still queued: workers finish them in the background)",
    ] == lines[3:]


def test_sweep_report_planned_update_names_custom_fields() -> None:
    """A planned update shows each key by the custom field's name, with what it held."""
    deal = {"id": "oppo_1", "confidence": 50, "custom.cf_seg": ["SMB"]}
    event = swept_event(deal, sweep="s", moment=MOMENT)
    planned = PlannedUpdate.of(event, {"confidence": 10, "custom.cf_seg.add": "Stale"})

    text = describe_update(planned, names={"cf_seg": "Segment"})

    assert 'oppo_1: confidence 50 -> 10, custom.Segment ["SMB"] + "Stale"' == text


def test_sweep_report_checkpoint_reads_back_whole() -> None:
    """A run's progress saved as JSON is the same progress read back."""
    event = swept_event({"id": "oppo_1", "confidence": 5}, sweep="s", moment=MOMENT)
    tally = Tally(3, 2, 1, 1, 0, ["Segment"], [PlannedUpdate.of(event, {"confidence": 10})])
    progress = Progress(Cursor("2026-01-01T00:00:00+00:00", ("oppo_1",)), 3, tally, 1, False)

    assert progress == Progress.from_dict(progress.to_dict())


def test_sweep_report_swept_event_survives_the_jobs_json() -> None:
    """A sweep's event, as a job carries it through Redis, is the same event again."""
    event = swept_event({"id": "oppo_1", "lead_id": "lead_1"}, sweep="s", moment=MOMENT)

    assert event == event_from_dict(event.to_dict())
