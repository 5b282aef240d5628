"""The rules page: every rule in force with its file and line, its trigger, enabled and dry
run, how often it fired over the last hour, day and week and when last (on which deal), the
report's checks; and `explain` for one event id, as `dealkeeper explain` tells it.

The list reads only Redis (one pipeline of a week of hourly counts, one hash of last
firings). Explain reads the event from Close's event log, or from a job dealkeeper still
holds, on an explicit request only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template, request

from service.adapters.activity import Activity, LastFired
from service.adapters.keptevents import KeptEvents
from service.authoring.explain import PayloadMissingError, explained
from service.authoring.naming import field_names
from service.config.errors import DealkeeperError, InvalidRulesError
from service.console.closecalls import NO_KEY, close_client
from service.console.context import Console, console
from service.core.events import EnvelopeError, event_from_dict, is_close_id
from service.core.rules import Rule, RuleSet
from service.core.rules.evaluation.dates import format_duration
from service.core.rules.model import AllOf, AnyOf, Condition, FindFilter, Not
from service.core.status import duration
from service.processing.eventsource import EventNotFoundError, find_event

# The windows of the fired counts, in hours: the last hour, day and week.
WINDOWS = (("1 h", 1), ("24 h", 24), ("7 d", 7 * 24))
CHANGE_OPERATORS = ("changed", "changed_from", "changed_to")
DURATION_OPERATORS = ("older_than", "newer_than")


@dataclass(frozen=True)
class RuleRow:
    """One rule as the page shows it."""

    rule: Rule
    trigger: str
    changes: tuple[str, ...]
    fired: tuple[int, ...]  # per WINDOWS
    last: LastFired | None


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/rules", "rules", _page)
    bp.add_url_rule("/rules/explain", "rules_explain", _explain)


def _page() -> str:
    the = console()
    holder = the.rules
    try:
        ruleset: RuleSet | None = holder.current()
    except InvalidRulesError:
        ruleset = None
    activity = Activity(the.connection, clock=the.clock)
    counts = activity.rule_counts_over([hours for _, hours in WINDOWS])
    last = activity.last_fired()
    rows = [
        RuleRow(
            rule=rule,
            trigger=trigger_text(rule),
            changes=changed_fields(rule),
            fired=tuple(window.get(rule.name, 0) for window in counts),
            last=last.get(rule.name),
        )
        for rule in (ruleset.rules if ruleset else ())
    ]
    return render_template(
        "console/rules.html",
        title="Rules",
        path=the.settings.rules_path,
        ruleset=ruleset,
        problems=holder.problems,
        rows=rows,
        windows=[label for label, _ in WINDOWS],
        ago=_ago(the),
        find_text=find_text,
    )


def trigger_text(rule: Rule) -> str:
    """What sets the rule off: its schedule for a sweep, else its event names."""
    if rule.sweep is not None:
        return f"schedule {rule.sweep.schedule.text} ({rule.timezone})"
    return ", ".join(rule.triggers)


def changed_fields(rule: Rule) -> tuple[str, ...]:
    """The fields whose change the rule waits for (changed, changed_from, changed_to)."""
    return tuple(dict.fromkeys(_changes(rule.condition)))


def _changes(node: AllOf | AnyOf | Not | Condition) -> Iterator[str]:
    if isinstance(node, Condition):
        if node.operator in CHANGE_OPERATORS:
            yield node.field
    elif isinstance(node, Not):
        yield from _changes(node.condition)
    else:
        for child in node.conditions:
            yield from _changes(child)


def find_text(filters: Sequence[FindFilter]) -> str:
    """A sweep's or a check's find, as written (durations as 60d)."""
    parts = []
    for f in filters:
        operand: Any = f.operand
        if f.operator in DURATION_OPERATORS and isinstance(operand, int):
            operand = format_duration(operand)
        elif isinstance(operand, (list, tuple)):
            operand = ", ".join(map(str, operand))
        parts.append(
            f"{f.name}: {operand}" if f.operator == "eq" else f"{f.name} {f.operator} {operand}"
        )
    return "; ".join(parts) or "every opportunity"


def _explain() -> str:
    the = console()
    event_id = (request.args.get("event") or "").strip()
    lines: list[str] = []
    problem = source = None
    if event_id:
        lines, source, problem = explain_event(the, event_id)
    return render_template(
        "console/rules_explain.html",
        title="Explain an event",
        event_id=event_id,
        lines=lines,
        source=source,
        problem=problem,
        has_key=bool(the.settings.close_api_key),
        no_key=NO_KEY,
    )


def explain_event(the: Console, event_id: str) -> tuple[list[str], str | None, str | None]:
    """(the lines `dealkeeper explain` prints, where the event came from, a problem)."""
    if not event_id.startswith("ev_") or not is_close_id(event_id):
        return [], None, f"{event_id!r} is not an event id: they look like ev_..."
    try:
        ruleset = the.rules.current()
    except InvalidRulesError:
        return [], None, "No good rules were ever loaded from the rules path: nothing to judge."
    client = close_client(the)
    try:
        found = find_event(event_id, client=client, kept=KeptEvents(the.connection))
        event = event_from_dict(found.raw)
        names = field_names(found.metadata)
        lines = explained(
            ruleset,
            event,
            metadata=found.metadata,
            rules_path=the.settings.rules_path,
            names=names,
        )
    except EventNotFoundError as error:
        why = f"{error}." if client is not None else f"{NO_KEY}. {error}."
        return [], None, why
    except (PayloadMissingError, EnvelopeError) as error:
        return [], None, str(error)
    except DealkeeperError as error:  # Close refused, failed or is rate limited for long
        return [], None, f"Close did not answer as expected: {error}"
    finally:
        if client is not None:
            client.close()
    return lines, found.source, None


def _ago(the: Console) -> Any:
    now = the.clock()
    return lambda at: duration(max(now - at, 0)) + " ago"
