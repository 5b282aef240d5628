"""make_plan: one event and the rules in force -> which rules fire and the one update to send.

Pure: the time comes with the event, Close's metadata comes as data, and the plan says why
every other rule did not fire. The rules run compiled (program.py); the reasons are written
by the interpreter (verdicts.judge) only when read (reasons.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.core.events import Event
from service.core.rules.evaluation.actions import Part
from service.core.rules.evaluation.dates import utc_offset_hours
from service.core.rules.evaluation.facts import Facts
from service.core.rules.evaluation.merge import Merged, merge_parts
from service.core.rules.evaluation.program import compiled_rules
from service.core.rules.evaluation.reasons import Reasons
from service.core.rules.evaluation.verdicts import Verdict, judge
from service.core.rules.model import Dropped, Metadata, Plan, Rule, RuleSet

__all__ = ["Verdict", "judge", "make_plan"]  # judge and Verdict live in verdicts.py now

OPPORTUNITY = "opportunity"


@dataclass
class _Run:
    """What the rules that fired write, for one event, in rule order."""

    fired_at: list[int] = field(default_factory=list)  # the places of the rules that fired
    live: list[Part] = field(default_factory=list)
    dry: list[Part] = field(default_factory=list)  # parts of dry_run rules
    unresolved: dict[str, None] = field(default_factory=dict)  # an ordered set


def make_plan(
    ruleset: RuleSet,
    event: Event,
    *,
    metadata: Metadata | None,
    own_api_key_ids: frozenset[str] = frozenset(),
) -> Plan:
    """The plan for `event`: fired rules, the update (possibly empty) and the reasons."""
    ignored = _ignored(event, own_api_key_ids)
    if ignored is not None:
        return Plan(event_id=event.id, opportunity_id=event.object_id, ignored=ignored)
    facts = Facts(event, metadata)
    run = _run(ruleset, facts)
    fired = [ruleset.rules[i] for i in run.fired_at]
    live, dry = _merge(run.live, event), _merge(run.dry, event)
    return Plan(
        event_id=event.id,
        opportunity_id=event.object_id,
        fired=tuple(rule.name for rule in fired),
        update=live.update,
        tz_offset_hours=_tz_offset_hours(live, fired, event),
        conflicts=tuple(live.conflicts),
        dropped=(
            *live.dropped,
            *dry.dropped,
            *(Dropped(p.key, p.rule, "dry run") for p in dry.sent),
        ),
        dry_run_update=dry.update,
        reasons_not_fired=Reasons(
            ruleset.rules, fired=run.fired_at, event=event, metadata=metadata
        ),
        unresolved=tuple(run.unresolved),
        truncated=facts.truncated,
    )


def _ignored(event: Event, own_api_key_ids: frozenset[str]) -> str | None:
    if event.object_type != OPPORTUNITY:
        return f"not an opportunity event: {event.name}"
    if event.api_key_id is not None and event.api_key_id in own_api_key_ids:
        return f"event caused by dealkeeper's own API key {event.api_key_id}"
    return None


def _run(ruleset: RuleSet, facts: Facts) -> _Run:
    run = _Run()
    live, dry, unresolved, fired_at = run.live, run.dry, run.unresolved, run.fired_at
    for fire, dry_run, index in compiled_rules(ruleset).runnable(facts.event.trigger):
        if fire(facts, dry if dry_run else live, unresolved):
            fired_at.append(index)
    return run


def _merge(parts: list[Part], event: Event) -> Merged:
    if event.action != "deleted":
        return merge_parts(parts)
    merged = Merged()
    merged.drop(parts, "opportunity deleted")
    return merged


def _tz_offset_hours(merged: Merged, fired: list[Rule], event: Event) -> float | None:
    if not merged.update:
        return None
    senders = {part.rule for part in merged.sent}
    last = next(rule for rule in reversed(fired) if rule.name in senders)
    return utc_offset_hours(event.date_created, last.timezone)
