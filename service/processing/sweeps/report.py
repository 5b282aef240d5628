"""What a sweep run did, as `dealkeeper sweep` prints it: a summary table and the first few
planned updates, custom fields by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.authoring.naming import readable_key
from service.core.rules import Rule
from service.core.rules.evaluation.values import show
from service.processing.sweeps.progress import PlannedUpdate, Progress

_PENDING = ("queued", "started", "scheduled", "deferred", "created")
_ALREADY_CORRECT = ("no_update", "stale", "own_change")


@dataclass
class Outcomes:
    """How the jobs a run queued ended (by the time the command stopped waiting)."""

    updated: int = 0
    already_correct: int = 0  # nothing left to write when the job re-read the deal
    dry_run: int = 0  # workers in dry-run mode logged the update instead of writing it
    gone: int = 0  # deleted before its job ran
    not_taken: int = 0  # Close answered 200 without taking some fields
    failed: int = 0  # parked: `dealkeeper failed list`
    pending: int = 0  # not finished yet


def count_outcomes(results: Mapping[str, tuple[str, Any]], *, job_ids: Iterable[str]) -> Outcomes:
    """Tally the jobs by how they ended; a job that is gone counts as pending."""
    found = Outcomes()
    for job_id in job_ids:
        status, value = results.get(job_id, ("queued", None))
        outcome = value.get("outcome") if isinstance(value, Mapping) else None
        if status in _PENDING or (status == "finished" and outcome is None):
            found.pending += 1
        elif status != "finished":
            found.failed += 1
        elif outcome in _ALREADY_CORRECT:
            found.already_correct += 1
        else:
            _count_written(found, str(outcome))
    return found


def _count_written(found: Outcomes, outcome: str) -> None:
    if outcome == "applied":
        found.updated += 1
    elif outcome == "dry_run":
        found.dry_run += 1
    elif outcome == "not_taken":
        found.not_taken += 1
    else:
        found.gone += 1


def is_settled(outcomes: Outcomes) -> bool:
    """True when no queued job is left to finish."""
    return outcomes.pending == 0


def format_summary(
    rule: Rule,
    *,
    moment: datetime,
    progress: Progress,
    outcomes: Outcomes | None,
    filters: Mapping[str, str],
    names: Mapping[str, str],
) -> list[str]:
    """The report of one run; `outcomes` None for a dry run (nothing was queued)."""
    where = f"{rule.position.file}:{rule.position.line}"
    mode = " (dry run: nothing queued, nothing written)" if outcomes is None else ""
    shown = ", ".join(f"{k}={v}" for k, v in filters.items()) or "none (every opportunity)"
    lines = [
        f"sweep {rule.name} ({where}) as of {moment:%Y-%m-%d %H:%M:%S} UTC{mode}",
        f"Close's filters: {shown}",
        "",
        *_table(progress, outcomes),
    ]
    if progress.tally.unresolved:
        unknown = ", ".join(progress.tally.unresolved)
        lines.append(
            f"note: Close does not know {unknown}; check with `dealkeeper validate --online`"
        )
    return lines + _planned(progress, names=names, dry=outcomes is None)


def _table(progress: Progress, outcomes: Outcomes | None) -> list[str]:
    tally = progress.tally
    rows: list[tuple[str, int, str]] = [
        ("listed", tally.listed, f"of {progress.total}" if progress.total is not None else ""),
        ("matched", tally.matched, ""),
    ]
    if outcomes is None:
        rows += [
            ("would update", tally.to_update, ""),
            ("already correct", tally.already_correct, ""),
        ]
        rows.append(("failed", 0, ""))
    else:
        rows += _job_rows(tally.already_correct, outcomes)
    width = max(len(label) for label, _, _ in rows)
    return [f"  {label:<{width}}  {count:>7}  {note}".rstrip() for label, count, note in rows]


def _job_rows(correct_when_listed: int, outcomes: Outcomes) -> list[tuple[str, int, str]]:
    correct = correct_when_listed + outcomes.already_correct
    rows = [
        ("updated", outcomes.updated, ""),
        ("already correct", correct, _when_job_ran(outcomes.already_correct)),
        (
            "failed",
            outcomes.failed,
            "(parked: `dealkeeper failed list`)" if outcomes.failed else "",
        ),
    ]
    optional = [
        ("logged (dry run)", outcomes.dry_run, "(DEALKEEPER_DRY_RUN: workers only log updates)"),
        ("gone", outcomes.gone, "(deleted before its job ran)"),
        (
            "not taken",
            outcomes.not_taken,
            "(Close answered 200 without taking some fields: `dealkeeper history OPPORTUNITY_ID`)",
        ),
        ("not done yet", outcomes.pending, "(still queued: workers finish them in the background)"),
    ]
    return rows + [row for row in optional if row[1]]


def _when_job_ran(count: int) -> str:
    return f"({count} of them by the time their job ran)" if count else ""


def _planned(progress: Progress, *, names: Mapping[str, str], dry: bool) -> list[str]:
    planned = progress.tally.planned
    if not planned:
        return []
    verb = "would send" if dry else "queued"
    lines = ["", f"planned updates (first {len(planned)} of {progress.tally.to_update}, {verb}):"]
    return lines + [f"  {describe_update(p, names=names)}" for p in planned]


def describe_update(planned: PlannedUpdate, *, names: Mapping[str, str]) -> str:
    """`oppo_x: confidence 50 -> 10, custom.Segment + "Stale"`, custom fields by name."""
    parts = []
    for key, value in planned.update.items():
        readable = readable_key(key, names)
        before = show(planned.current.get(key))
        for suffix, sign in ((".add", "+"), (".remove", "-")):
            if readable.endswith(suffix):
                parts.append(f"{readable.removesuffix(suffix)} {before} {sign} {show(value)}")
                break
        else:
            parts.append(f"{readable} {before} -> {show(value)}")
    return f"{planned.opportunity_id}: {', '.join(parts)}"
