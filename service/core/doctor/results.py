"""What `dealkeeper doctor` shows: one result per check, lines for people, JSON for scripts.

Pure: service/commands/doctor.py asks Close and Redis and judges what it found with
service/core/doctor/diagnosis.py; this module only holds the results and prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PASS_MARK = "✓"
FAIL_MARK = "✗"
# Every check in the order it is shown; a check not run (the write probe without
# --write-probe) is left out.
ORDER = (
    "key",
    "admin",
    "rules",
    "subscription",
    "clock",
    "rate limit",
    "event log",
    "write probe",
)
_NAME_WIDTH = max(len(name) for name in ORDER) + 2


@dataclass(frozen=True)
class Check:
    """One check's outcome: what was found, and when it failed, what to do next."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


def passed(name: str, detail: str) -> Check:
    """A check that holds."""
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    """A check that does not hold, with the fix."""
    return Check(name, False, detail, fix)


def not_checked(name: str, reason: str, fix: str) -> Check:
    """A check that could not run because an earlier one failed: it fails too."""
    return Check(name, False, f"not checked: {reason}", fix)


def in_order(checks: Sequence[Check]) -> list[Check]:
    """The checks in ORDER (unknown names last, as given)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(checks, key=lambda c: rank.get(c.name, len(ORDER)))


def all_passed(checks: Sequence[Check]) -> bool:
    """Whether every check holds (exit status 0)."""
    return all(check.ok for check in checks)


def render_text(checks: Sequence[Check], *, took_sec: float) -> str:
    """One line per check, ✓ or ✗, the fix indented under a failure, then a summary."""
    lines: list[str] = []
    for check in checks:
        mark = PASS_MARK if check.ok else FAIL_MARK
        lines.append(f"{mark} {check.name:<{_NAME_WIDTH}}{check.detail}")
        if check.fix:
            lines.append(f"  {'':<{_NAME_WIDTH}}fix: {check.fix}")
    failures = sum(not check.ok for check in checks)
    verdict = "all passed" if not failures else f"{failures} failed"
    lines.append(f"{len(checks)} checks, {verdict} ({took_sec:.1f} s)")
    return "\n".join(lines)


def to_json(checks: Sequence[Check], *, took_sec: float) -> dict[str, Any]:
    """`{"ok", "took_sec", "checks": [{"name", "ok", "detail", "fix"}]}`; fix is null when ok."""
    return {
        "ok": all_passed(checks),
        "took_sec": round(took_sec, 3),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks],
    }
