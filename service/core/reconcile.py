"""No stale writes: an update planned from an event is checked against the opportunity as it
is now, just before it is sent.

Close delivers events late and out of order, and people keep editing. So a plan made from
an old event keeps only what the rules still call for on the current state, and never
overwrites a field that someone (or a newer event) has changed since the event. Pure: the
current state and dealkeeper's own recent writes come in, a narrower plan goes out.

A field changed since the event only by dealkeeper's own writes for *older* events of the
deal is not protected: those answers are older than this event's, and the later event's
answer wins (an event A's slow PUT landing after a newer event B happened must not make B's
write look stale). A write for a newer event, or anyone else's change, is protected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

from service.core.events import SWEPT, Event, parse_close_time
from service.core.rules import Metadata, Plan, RuleSet, make_plan
from service.core.rules.evaluation.merge import ALREADY_HOLDS
from service.core.rules.evaluation.values import as_list, holds_value, same_members, values_equal
from service.core.rules.model import Dropped
from service.core.rules.spec import SWEEP_ONLY_FIELDS

NO_LONGER_CALLED_FOR = "no longer called for by the opportunity as it is now"
CHANGED_SINCE = "changed since the event"
_MISSING = object()


@dataclass(frozen=True)
class OwnWrite:
    """An update dealkeeper sent to one opportunity: the moment of the event it answered,
    and the moment Close took it (the `date_updated` of Close's answer to the PUT), both by
    Close's clock in epoch seconds. None where unknown (a write whose answer never came, a
    receipt older than these fields): such a write counts as nobody's."""

    update: Mapping[str, Any]
    event_at: float | None = None
    landed_at: float | None = None


def written_field(key: str) -> str:
    """The opportunity field a PUT body key changes (`custom.cf_x.add` -> `custom.cf_x`)."""
    for suffix in (".add", ".remove"):
        if key.startswith("custom.") and key.endswith(suffix):
            return key.removesuffix(suffix)
    return "status_id" if key == "status" else key


def is_list_edit(key: str) -> bool:
    """True for a PUT body key that adds or removes one value of a list (`custom.cf_x.add`)."""
    return key.startswith("custom.") and key.endswith((".add", ".remove"))


def not_yet_taken(update: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """What of `update`, sent once with an answer lost, is still to send to the deal as
    `current` shows it. A list edit shows: an `.add` whose value the deal holds, a `.remove`
    whose value it lacks. When every list edit shows, Close took the PUT, and it takes a
    PUT whole: nothing is left (sending its values again could undo a change made since).
    Otherwise the edits that do not show go again with the values set beside them, which
    are idempotent (what a repeated `.add` does, Close does not say)."""
    edits = {key: value for key, value in update.items() if is_list_edit(key)}
    untaken = {key: value for key, value in edits.items() if not _shows(key, value, current)}
    if edits and not untaken:
        return {}
    return {key: value for key, value in update.items() if key not in edits or key in untaken}


def _shows(key: str, value: Any, current: Mapping[str, Any]) -> bool:
    held = holds_value(as_list(current.get(written_field(key))), value)
    return held == key.endswith(".add")


def is_unchanged_since(event: Event, current: Mapping[str, Any]) -> bool:
    """True when the opportunity read now is the very state the event carries: the same
    `date_updated`. An event whose state claims a later one than the deal read now (a
    clock or a replica behind, a delivery not as Close documents it) contradicts the deal,
    so its plan is checked against the deal like any other: its state is no guide."""
    then, now = _stamp(event.data), _stamp(current)
    return then is not None and now is not None and then == now


def holds_whole_state(event: Event) -> bool:
    """True when the event's data is the whole opportunity, so an unchanged `date_updated`
    means the plan was made from the deal as it is now. A webhook's `data` is the full
    object, as if fetched from the API (Close's words; the event log's events are the
    same). A swept event's is what a list page returned, which may lack fields (custom
    fields a `_fields` did not bring): its plan is always made again from the deal read."""
    return event.action != SWEPT


def reconcile(
    plan: Plan,
    event: Event,
    current: Mapping[str, Any],
    *,
    ruleset: RuleSet,
    metadata: Metadata | None,
    own_api_key_ids: frozenset[str] = frozenset(),
    own_writes: Sequence[OwnWrite] = (),
) -> Plan:
    """The part of `plan.update` that is still right to send, given the current state and
    dealkeeper's own recent writes to the opportunity (oldest first)."""
    seen = with_own_writes(event, own_writes)
    if seen is not event:
        # Our answers to older events reached Close after this event happened: plan as if
        # they had come first, so this event's answer replaces theirs, also where the
        # event's own state already held it.
        plan = make_plan(ruleset, seen, metadata=metadata, own_api_key_ids=own_api_key_ids)
    if not plan.update or (holds_whole_state(event) and is_unchanged_since(event, current)):
        return plan
    now_event = replace(event, data=_state_now(event, current))
    now_plan = make_plan(ruleset, now_event, metadata=metadata, own_api_key_ids=own_api_key_ids)
    kept: dict[str, Any] = {}
    dropped: list[Dropped] = []
    for key, value in plan.update.items():
        reason = _why_not(key, value, event=seen, current=current, now_plan=now_plan)
        if reason:
            dropped.append(Dropped(key, "", reason))
        else:
            kept[key] = value
    return replace(plan, update=kept, dropped=(*plan.dropped, *dropped))


def _state_now(event: Event, current: Mapping[str, Any]) -> dict[str, Any]:
    """The deal as read now, with what a sweep worked out for it itself (when it last
    changed status), which no read of the deal carries."""
    worked_out = {key: event.data[key] for key in SWEEP_ONLY_FIELDS if key in event.data}
    return {**worked_out, **current}


def with_own_writes(event: Event, own_writes: Sequence[OwnWrite]) -> Event:
    """`event` with its state as dealkeeper's own writes for older events of the deal, sent
    after it happened, left the deal (the same event when there are none): what a change
    since then that is not ours is measured against."""
    data = dict(event.data)
    for write in own_writes:
        if not _answered_older_after(write, event):
            continue
        for key, value in write.update.items():
            field = written_field(key)
            data[field] = _applied(key, value, data.get(field))
    return event if data == event.data else replace(event, data=data)


def held_parts(plan: Plan) -> bool:
    """True when parts of the plan were left out because the event's state already held
    them: a job then asks whether our own later writes undid that (`with_own_writes`)."""
    return any(d.reason == ALREADY_HOLDS for d in plan.dropped)


def _why_not(
    key: str, value: Any, *, event: Event, current: Mapping[str, Any], now_plan: Plan
) -> str | None:
    if not values_equal(now_plan.update.get(key, _MISSING), value):
        return NO_LONGER_CALLED_FOR
    if key.endswith((".add", ".remove")):
        return None  # adding or removing one value composes with whatever changed since
    field = written_field(key)
    if field in event.data and not _same(event.data.get(field), current.get(field)):
        return CHANGED_SINCE
    return None


def _answered_older_after(write: OwnWrite, event: Event) -> bool:
    """True for a write that answered an event older than `event` and reached Close after
    `event` happened (so `event.data` cannot show it)."""
    if write.event_at is None or write.landed_at is None:
        return False
    return write.event_at < event.date_created.timestamp() and write.landed_at > _moment(event)


def _moment(event: Event) -> float:
    """When the event's change was made, by the clock Close stamps `date_updated` with."""
    stamp = _stamp(event.data)
    return event.date_created.timestamp() if stamp is None else stamp


def _stamp(state: Mapping[str, Any]) -> float | None:
    """The state's `date_updated` in epoch seconds; None when it has none that reads."""
    with suppress(ValueError):
        return parse_close_time(state.get("date_updated"), what="date_updated").timestamp()
    return None


def _applied(key: str, written: Any, value: Any) -> Any:
    """A field's value after one key of a PUT body."""
    if key.endswith(".add"):
        values = as_list(value)
        return values if holds_value(values, written) else [*values, written]
    if key.endswith(".remove"):
        return [v for v in as_list(value) if not values_equal(v, written)]
    return written


def _same(then: Any, now: Any) -> bool:
    if isinstance(then, list) or isinstance(now, list):
        # A multi-value field: the same values, in whatever order Close keeps them (and
        # null for none).
        return same_members(as_list(then), as_list(now))
    return values_equal(then, now)
