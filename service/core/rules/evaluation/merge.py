"""Merging the parts of every fired rule into one update, without no-ops.

Parts are grouped by key in firing order. A plain field takes the last value written (a
different earlier value by another rule is a Conflict). A multi-value field is worked out
on its current list: one effective add or remove goes out as Close's `.add`/`.remove`,
anything more as the whole resulting list. Whatever already holds is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from service.core.rules.evaluation.actions import Part
from service.core.rules.evaluation.values import as_list, holds_value, same_members, values_equal
from service.core.rules.model import Conflict, Dropped

ALREADY_HOLDS = "already holds"


@dataclass
class Merged:
    """The update, the parts it carries, and what was left out or overridden."""

    update: dict[str, Any] = field(default_factory=dict)
    sent: list[Part] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def drop(self, parts: Sequence[Part], reason: str) -> None:
        """Leave these parts out of the update, saying why."""
        self.dropped.extend(Dropped(p.key, p.rule, reason) for p in parts)


def merge_parts(parts: Sequence[Part]) -> Merged:
    """One update from the parts of every fired rule, in firing order."""
    groups: dict[str, list[Part]] = {}
    for part in parts:
        groups.setdefault(part.key, []).append(part)
    merged = Merged()
    for key, group in groups.items():
        merged.conflicts.extend(_conflicts(key, group))
        if any(p.kind in ("add", "remove") for p in group):
            _merge_list(key, group, merged)
        else:
            _merge_plain(key, group, merged)
    return merged


def _conflicts(key: str, parts: list[Part]) -> list[Conflict]:
    writes = [p for p in parts if p.kind in ("set", "unset")]
    return [
        Conflict(key, earlier.rule, earlier.value, later.rule, later.value)
        for earlier, later in pairwise(writes)
        if earlier.rule != later.rule and not values_equal(earlier.value, later.value)
    ]


def _merge_plain(key: str, parts: list[Part], merged: Merged) -> None:
    final = parts[-1]
    winners = [p for p in parts if values_equal(p.value, final.value)]
    merged.drop(_not_among(parts, winners), f"overridden by rule '{final.rule}'")
    if _holds(final.current, final.value):
        merged.drop(winners, ALREADY_HOLDS)
        return
    merged.update[key] = final.value
    merged.sent.extend(winners)


def _not_among(parts: list[Part], winners: list[Part]) -> list[Part]:
    """The parts equal to no winner (`p not in winners`). Equal parts name the same rule, so
    each part is compared only with its own rule's winners: a thousand rules writing one
    field stay linear instead of comparing every part with every winner."""
    by_rule: dict[str, list[Part]] = {}
    for winner in winners:
        by_rule.setdefault(winner.rule, []).append(winner)
    return [p for p in parts if p not in by_rule.get(p.rule, ())]


def _holds(current: Any, value: Any) -> bool:
    # A multi-value field's values have no order that matters to Close.
    if isinstance(current, list) and isinstance(value, list):
        return same_members(current, value)
    return values_equal(current, value)


def _merge_list(key: str, parts: list[Part], merged: Merged) -> None:
    start = as_list(parts[0].current)
    running, effective = list(start), []
    for part in parts:
        after = _apply(running, part)
        if same_members(after, running):
            merged.drop([part], ALREADY_HOLDS)
        else:
            effective.append(part)
            running = after
    if same_members(running, start):
        merged.drop(effective, ALREADY_HOLDS)
        return
    merged.sent.extend(effective)
    merged.update.update(_list_update(key, effective, running))


def _list_update(key: str, effective: list[Part], result: list[Any]) -> dict[str, Any]:
    # Close takes one value per .add/.remove key and request; more than that goes out
    # as the whole list.
    if len(effective) == 1 and effective[0].kind in ("add", "remove"):
        return {f"{key}.{effective[0].kind}": effective[0].value}
    if all(p.kind in ("set", "unset") for p in effective):
        return {key: effective[-1].value}
    return {key: result}


def _apply(values: list[Any], part: Part) -> list[Any]:
    if part.kind == "set":
        return as_list(part.value)
    if part.kind == "unset":
        return []
    if part.kind == "add":
        return values if holds_value(values, part.value) else [*values, part.value]
    return [v for v in values if not values_equal(v, part.value)]
