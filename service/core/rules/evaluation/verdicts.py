"""judge: one rule against one event, interpreted straight from the rule's tree, with the
reason it does not fire spelled out.

This is the reference reading of a rule. make_plan runs the compiled form (program.py) and
asks judge only for the reasons someone reads (reasons.py); `dealkeeper explain` traces with
it. The two must always agree on whether a rule fires, which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.events import Event
from service.core.rules.evaluation.actions import Part, resolve_actions
from service.core.rules.evaluation.conditions import Scope, evaluate
from service.core.rules.evaluation.fields import condition_fields, custom_ref, field_ref
from service.core.rules.model import Metadata, Rule


@dataclass(frozen=True)
class Verdict:
    """What one rule makes of the event."""

    rule: Rule
    fired: bool
    reason: str = ""
    parts: tuple[Part, ...] = ()
    unresolved: tuple[str, ...] = ()


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
