"""What `validate` says of rules that load: the warnings every check finds, and the one-line
summary. The CLI and the console's playground both say it, so they say it alike."""

from __future__ import annotations

from collections.abc import Sequence

from service.authoring.interactions import RuleWarning, find_interactions
from service.authoring.unreported import find_unreported_changes
from service.authoring.writability import find_undocumented_writes
from service.core.rules import RuleSet


def warnings_of(ruleset: RuleSet) -> list[RuleWarning]:
    """Rules that work against each other, writes Close may not take, and update rules
    waiting on changes Close may never report."""
    return [
        *find_interactions(ruleset),
        *find_undocumented_writes(ruleset),
        *find_unreported_changes(ruleset),
    ]


def counted(ruleset: RuleSet) -> str:
    """ "3 rules", or "3 rules and 1 report check"."""
    checks = f" and {many(len(ruleset.checks), 'report check')}" if ruleset.checks else ""
    return f"{many(len(ruleset.rules), 'rule')}{checks}"


def noted(warnings: Sequence[RuleWarning]) -> str:
    """ "; 2 warnings" when there are some, else nothing."""
    return f"; {many(len(warnings), 'warning')}" if warnings else ""


def many(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
