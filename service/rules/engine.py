"""make_plan: one event and the rules in force -> which rules fire and the one update to send.

Pure: the time comes with the event, Close's metadata comes as data, and the plan says why
every other rule did not fire.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.events import Event
from service.rules.actions import Part, resolve_actions
from service.rules.conditions import Scope, evaluate
from service.rules.dates import utc_offset_hours
from service.rules.fields import condition_fields, custom_ref, field_ref
from service.rules.merge import Merged, merge_parts
from service.rules.model import Dropped, Metadata, Plan, Rule, RuleSet

OPPORTUNITY = "opportunity"


@dataclass(frozen=True)
class Verdict:
    """What one rule makes of the event."""

    rule: Rule
    fired: bool
    reason: str = ""
    parts: tuple[Part, ...] = ()
    unresolved: tuple[str, ...] = ()


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
    verdicts = [judge(rule, event, metadata=metadata) for rule in ruleset.rules]
    fired = [v for v in verdicts if v.fired]
    live = _merge([p for v in fired if not v.rule.dry_run for p in v.parts], event)
    dry = _merge([p for v in fired if v.rule.dry_run for p in v.parts], event)
    return Plan(
        event_id=event.id,
        opportunity_id=event.object_id,
        fired=tuple(v.rule.name for v in fired),
        update=live.update,
        tz_offset_hours=_tz_offset_hours(live, fired, event),
        conflicts=tuple(live.conflicts),
        dropped=(
            *live.dropped,
            *dry.dropped,
            *(Dropped(p.key, p.rule, "dry run") for p in dry.sent),
        ),
        dry_run_update=dry.update,
        reasons_not_fired={v.rule.name: v.reason for v in verdicts if not v.fired},
        unresolved=tuple(dict.fromkeys(name for v in verdicts for name in v.unresolved)),
    )


def _ignored(event: Event, own_api_key_ids: frozenset[str]) -> str | None:
    if event.object_type != OPPORTUNITY:
        return f"not an opportunity event: {event.name}"
    if event.api_key_id is not None and event.api_key_id in own_api_key_ids:
        return f"event caused by dealkeeper's own API key {event.api_key_id}"
    return None


def judge(rule: Rule, event: Event, *, metadata: Metadata | None) -> Verdict:
    """Whether `rule` fires for `event`, with its parts, or the first reason it does not."""
    if not rule.enabled:
        return Verdict(rule, fired=False, reason="disabled")
    if event.trigger not in rule.triggers:
        return Verdict(rule, fired=False, reason=_trigger_reason(rule, event))
    unknown = _unknown_fields(rule, metadata)
    if unknown:
        return Verdict(rule, False, _unknown_reason(unknown), unresolved=unknown)
    outcome = evaluate(rule.condition, Scope(event, metadata, rule.timezone))
    if not outcome.ok:
        return Verdict(rule, fired=False, reason=outcome.detail)
    resolved = resolve_actions(rule, event=event, metadata=metadata)
    if resolved.failures:
        return Verdict(rule, False, "; ".join(resolved.failures), unresolved=resolved.unresolved)
    return Verdict(rule, fired=True, parts=resolved.parts)


def _trigger_reason(rule: Rule, event: Event) -> str:
    if rule.sweep is not None and event.sweep is None:
        return f"a sweep rule: it runs on its schedule ({rule.sweep.schedule.text}), not on events"
    if rule.sweep is not None:
        return f"a sweep rule: it runs in its own sweep, not in sweep '{event.sweep}'"
    return f"trigger {event.trigger} not in [{', '.join(rule.triggers)}]"


def _unknown_fields(rule: Rule, metadata: Metadata | None) -> tuple[str, ...]:
    fields = condition_fields(rule.condition)
    unknown = (custom_ref(f) for f in fields if field_ref(f, metadata) is None)
    return tuple(dict.fromkeys(name for name in unknown if name is not None))


def _unknown_reason(names: tuple[str, ...]) -> str:
    return "; ".join(f"unknown custom field '{name}'" for name in names)


def _merge(parts: list[Part], event: Event) -> Merged:
    if event.action != "deleted":
        return merge_parts(parts)
    merged = Merged()
    merged.drop(parts, "opportunity deleted")
    return merged


def _tz_offset_hours(merged: Merged, fired: list[Verdict], event: Event) -> float | None:
    if not merged.update:
        return None
    senders = {part.rule for part in merged.sent}
    last = [v.rule for v in fired if v.rule.name in senders][-1]
    return utc_offset_hours(event.date_created, last.timezone)
