"""No stale writes: an update planned from an event is checked against the opportunity as it
is now, just before it is sent.

Close delivers events late and out of order, and people keep editing. So a plan made from
an old event keeps only what the rules still call for on the current state, and never
overwrites a field that someone (or a newer event) has changed since the event. Pure: the
current state comes in, a narrower plan goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from service.adapters.ownwrites import written_field
from service.events import Event, parse_close_time
from service.rules import Metadata, Plan, RuleSet, make_plan
from service.rules.model import Dropped
from service.rules.values import values_equal

NO_LONGER_CALLED_FOR = "no longer called for by the opportunity as it is now"
CHANGED_SINCE = "changed since the event"
_MISSING = object()


def is_unchanged_since(event: Event, current: Mapping[str, Any]) -> bool:
    """True when the opportunity was not updated after the state the event carries."""
    then, now = event.data.get("date_updated"), current.get("date_updated")
    if then is None or now is None:
        return False
    try:
        return parse_close_time(then, what="date_updated") >= parse_close_time(
            now, what="date_updated"
        )
    except ValueError:
        return False


def reconcile(
    plan: Plan,
    event: Event,
    current: Mapping[str, Any],
    *,
    ruleset: RuleSet,
    metadata: Metadata | None,
    own_api_key_ids: frozenset[str] = frozenset(),
) -> Plan:
    """The part of `plan.update` that is still right to send, given the current state."""
    if not plan.update or is_unchanged_since(event, current):
        return plan
    now_event = replace(event, data=dict(current))
    now_plan = make_plan(ruleset, now_event, metadata=metadata, own_api_key_ids=own_api_key_ids)
    kept: dict[str, Any] = {}
    dropped: list[Dropped] = []
    for key, value in plan.update.items():
        reason = _why_not(key, value, event=event, current=current, now_plan=now_plan)
        if reason:
            dropped.append(Dropped(key, "", reason))
        else:
            kept[key] = value
    return replace(plan, update=kept, dropped=(*plan.dropped, *dropped))


def _why_not(
    key: str, value: Any, *, event: Event, current: Mapping[str, Any], now_plan: Plan
) -> str | None:
    if not values_equal(now_plan.update.get(key, _MISSING), value):
        return NO_LONGER_CALLED_FOR
    if key.endswith((".add", ".remove")):
        return None  # adding or removing one value composes with whatever changed since
    field = written_field(key)
    if field in event.data and not values_equal(event.data.get(field), current.get(field)):
        return CHANGED_SINCE
    return None
