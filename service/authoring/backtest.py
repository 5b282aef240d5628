"""`dealkeeper backtest`: what rules would have done over past events, and what a change would.

Pure: events (from Close's event log) go in, tallies come out. Each event is judged on the
data it carried then, as a worker would have, with Close's metadata of today. Nothing is
written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.authoring.naming import readable_key
from service.core.events import EnvelopeError, Event, event_from_dict
from service.core.rules import Explanation, Metadata, RuleSet, explain_plan
from service.core.rules.evaluation.values import show, values_equal

SAMPLES_PER_RULE = 3
DIFF_SAMPLES = 10


@dataclass(frozen=True)
class Change:
    """One key of one update: what the opportunity held, and what would have been sent."""

    event_id: str
    opportunity_id: str
    when: str  # the event's moment, ISO
    key: str
    before: Any
    after: Any

    def describe(self, names: Mapping[str, str]) -> str:
        """`when oppo (event): key before -> after`, custom fields by name."""
        where = f"{self.when} {self.opportunity_id} ({self.event_id})"
        key = readable_key(self.key, names)
        before, after = show(self.before), show(self.after)
        for suffix, sign in ((".add", "+"), (".remove", "-")):
            if key.endswith(suffix):
                return f"{where}: {key.removesuffix(suffix)} {before} {sign} {after}"
        return f"{where}: {key} {before} -> {after}"


@dataclass
class RuleTally:
    """How one rule did over the events."""

    name: str
    seen: int = 0  # events of its triggers (while enabled)
    fired: int = 0
    writes: int = 0  # events whose update carries a part of this rule
    samples: list[Change] = field(default_factory=list)


@dataclass
class Backtest:
    """Tallies over every event read."""

    events: int = 0
    unreadable: int = 0  # not an event dealkeeper understands
    without_data: int = 0  # Close hid the data (non-admin key, older than an hour)
    ignored: int = 0
    updates: int = 0  # events that would have made one PUT
    rules: dict[str, RuleTally] = field(default_factory=dict)


def readable_events(raw_events: Iterable[Mapping[str, Any]], into: Backtest) -> list[Event]:
    """The events that can be judged; the others are counted in `into`."""
    events = []
    for raw in raw_events:
        into.events += 1
        try:
            event = event_from_dict(raw)
        except EnvelopeError:
            into.unreadable += 1
            continue
        if event.payload_missing or not event.state:
            into.without_data += 1
            continue
        events.append(event)
    return events


def tally(
    backtest: Backtest, ruleset: RuleSet, event: Event, *, metadata: Metadata | None
) -> Explanation:
    """Add one event's outcome to the tallies; returns its explanation."""
    explanation = explain_plan(ruleset, event, metadata=metadata)
    plan = explanation.plan
    for rule in ruleset.rules:
        backtest.rules.setdefault(rule.name, RuleTally(rule.name))
    if plan.ignored:
        backtest.ignored += 1
        return explanation
    backtest.updates += plan.has_update
    writers = {name for names in explanation.contributors.values() for name in names}
    for trace in explanation.rules:
        counts = backtest.rules[trace.rule.name]
        counts.seen += trace.rule.enabled and event.name in trace.rule.triggers
        counts.fired += trace.fired
        if trace.rule.name in writers:
            counts.writes += 1
            _sample(counts, explanation, event)
    return explanation


def _sample(counts: RuleTally, explanation: Explanation, event: Event) -> None:
    if len(counts.samples) >= SAMPLES_PER_RULE:
        return
    for key, rules in explanation.contributors.items():
        if counts.name in rules:
            before = _before(explanation, counts.name, key)
            counts.samples.append(_change(event, key, before, explanation.plan.update[key]))


def _before(explanation: Explanation, rule: str, key: str) -> Any:
    base = key.removesuffix(".add").removesuffix(".remove")
    trace = next(t for t in explanation.rules if t.rule.name == rule)
    return next((p.current for p in trace.parts if p.key == base), None)


def _change(event: Event, key: str, before: Any, after: Any) -> Change:
    when = event.date_created.isoformat(timespec="seconds")
    return Change(event.id, event.object_id, when, key, before, after)


@dataclass
class RulesDiff:
    """What one rule set writes that another does not, event by event."""

    compared: int = 0
    events_differing: int = 0
    added: int = 0  # keys only the new rules write
    removed: int = 0  # keys only the old rules write
    changed: int = 0  # keys both write, with different values
    samples: list[tuple[str, Change]] = field(default_factory=list)  # ("+"/"-"/"~", change)


def compare(diff: RulesDiff, event: Event, *, new: Explanation, old: Explanation) -> None:
    """Add one event's difference between the new and the old rules' updates."""
    diff.compared += 1
    new_update, old_update = new.plan.update, old.plan.update
    marks = []
    for key in dict.fromkeys([*old_update, *new_update]):
        if key not in old_update:
            marks.append(("+", _change(event, key, None, new_update[key])))
        elif key not in new_update:
            marks.append(("-", _change(event, key, old_update[key], None)))
        elif not values_equal(old_update[key], new_update[key]):
            marks.append(("~", _change(event, key, old_update[key], new_update[key])))
    diff.events_differing += bool(marks)
    diff.added += sum(mark == "+" for mark, _ in marks)
    diff.removed += sum(mark == "-" for mark, _ in marks)
    diff.changed += sum(mark == "~" for mark, _ in marks)
    diff.samples.extend(marks[: max(0, DIFF_SAMPLES - len(diff.samples))])


def replay(
    raw_events: Iterable[Mapping[str, Any]],
    ruleset: RuleSet,
    *,
    metadata: Metadata | None,
    baseline: RuleSet | None = None,
    each: Callable[[list[Event]], Iterable[Event]] = lambda events: events,
) -> tuple[Backtest, RulesDiff]:
    """Every readable event through `ruleset` (tallied) and, given a `baseline`, the
    difference of their updates (`dealkeeper backtest [--diff]`, the console's playground).
    `each` wraps the events' iteration (a progress bar)."""
    result, diff = Backtest(), RulesDiff()
    for event in each(readable_events(raw_events, result)):
        new = tally(result, ruleset, event, metadata=metadata)
        if baseline is not None:
            compare(diff, event, new=new, old=explain_plan(baseline, event, metadata=metadata))
    return result, diff


def format_backtest(
    backtest: Backtest, *, title: str, names: Mapping[str, str] | None = None
) -> list[str]:
    """The per-rule table, totals and a few sample changes per rule (custom fields by name)."""
    width = max([len("rule"), *(len(name) for name in backtest.rules)])
    lines = [title, "", f"{'rule':<{width}}  {'seen':>6}  {'fired':>6}  {'writes':>6}"]
    for counts in backtest.rules.values():
        lines.append(
            f"{counts.name:<{width}}  {counts.seen:>6}  {counts.fired:>6}  {counts.writes:>6}"
        )
    lines.extend(["", _totals(backtest)])
    if backtest.without_data:
        lines.append(
            f"{backtest.without_data} events came without their data: Close shows it only to "
            "admin keys for events older than an hour; run the backtest with an admin's key"
        )
    sampled = [counts for counts in backtest.rules.values() if counts.samples]
    if sampled:
        lines.extend(["", "sample changes (what the opportunity held -> what would be sent):"])
    for counts in sampled:
        lines.append(f"  {counts.name}")
        lines.extend(f"    {change.describe(names or {})}" for change in counts.samples)
    return lines


def _totals(backtest: Backtest) -> str:
    return (
        f"{backtest.events} events read, {backtest.updates} would have made a PUT "
        f"({backtest.ignored} ignored, {backtest.without_data} without data, "
        f"{backtest.unreadable} unreadable)"
    )


def format_diff(
    diff: RulesDiff, *, new: str, old: str, names: Mapping[str, str] | None = None
) -> list[str]:
    """What the new rules would write that the old ones do not, and the other way round."""
    lines = [
        f"difference from {old} to {new}, over {diff.compared} events: "
        f"{diff.events_differing} would get a different update",
        f"  + {diff.added} writes only {new} makes",
        f"  - {diff.removed} writes only {old} makes",
        f"  ~ {diff.changed} writes both make, with different values",
    ]
    if diff.samples:
        lines.append(f"samples (+ {new} only, - {old} only, ~ {old} -> {new}):")
        lines.extend(_diff_line(mark, change, names or {}) for mark, change in diff.samples)
    return lines


def _diff_line(mark: str, change: Change, names: Mapping[str, str]) -> str:
    where = f"{change.when} {change.opportunity_id} ({change.event_id})"
    key = readable_key(change.key, names)
    if mark == "+":
        return f"  + {where}: {key} = {show(change.after)}"
    if mark == "-":
        return f"  - {where}: {key} = {show(change.before)}"
    return f"  ~ {where}: {key} {show(change.before)} -> {show(change.after)}"
