"""The names rules use that Close's metadata no longer has: a custom field deleted or
renamed, a status label gone. Pure: the rules and the metadata in, one entry per rule and
name out, with what Close has instead.

Such a rule does not fire (the engine never guesses what a name meant), so an ops person
must hear of it: workers record the list (service/adapters/unknownfields.py) and
`dealkeeper status`, /readyz and /metrics show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.core.rules.evaluation.fields import condition_leaves, custom_ref
from service.core.rules.model import Metadata, Rule, RuleSet
from service.core.rules.suggest import closest

# Operators whose operands are values of the field (a label, for `status`).
_LABEL_OPERATORS = frozenset({"eq", "ne", "in", "not_in", "changed_from", "changed_to"})
_LABEL_FIELDS = frozenset({"status", "status_label"})


@dataclass(frozen=True, order=True)
class UnknownField:
    """One name one rule uses that Close does not know now."""

    rule: str
    field: str  # as the rule writes it: "custom.Segment", or "status: Won" for a label
    reason: str  # what Close has instead, with a guess when one is close

    def to_dict(self) -> dict[str, str]:
        """Plain JSON, as Redis keeps it and `status --json` and /readyz show it."""
        return {"rule": self.rule, "field": self.field, "reason": self.reason}

    @classmethod
    def from_dict(cls, raw: Any) -> UnknownField | None:
        """The entry in `raw`; None when it is not one (written by another version)."""
        if not isinstance(raw, dict):
            return None
        rule, field, reason = raw.get("rule"), raw.get("field"), raw.get("reason")
        if isinstance(rule, str) and isinstance(field, str) and isinstance(reason, str):
            return cls(rule, field, reason)
        return None


def unknown_fields(ruleset: RuleSet, metadata: Metadata | None) -> tuple[UnknownField, ...]:
    """Every (enabled rule, name) Close's metadata lacks, sorted; none offline (no
    metadata: names are then taken as written)."""
    if metadata is None:
        return ()
    found = {entry for rule in ruleset.rules if rule.enabled for entry in _of_rule(rule, metadata)}
    return tuple(sorted(found))


def _of_rule(rule: Rule, metadata: Metadata) -> Iterator[UnknownField]:
    for test in condition_leaves(rule.condition):
        yield from _custom(rule, test.field, metadata)
        if test.field in _LABEL_FIELDS and test.operator in _LABEL_OPERATORS:
            yield from _labels(rule, test.operand, metadata)
    for action in rule.actions:
        yield from _custom(rule, action.field, metadata)
        if action.field == "status" and action.kind == "set":
            yield from _labels(rule, action.value, metadata)


def _custom(rule: Rule, field: str, metadata: Metadata) -> Iterator[UnknownField]:
    name = custom_ref(field)
    if name is None or metadata.custom_field(name) is not None:
        return
    fields = metadata.custom_fields
    guess = closest(name, [*(f.name for f in fields), *(f.id for f in fields)])
    reason = f"Close has no opportunity custom field named '{name}'"
    if guess is not None:
        reason += f"; did you mean '{guess}'?"
    yield UnknownField(rule.name, field, reason)


def _labels(rule: Rule, operand: Any, metadata: Metadata) -> Iterator[UnknownField]:
    labels = sorted({status.label for status in metadata.statuses})
    for label in operand if isinstance(operand, list) else [operand]:
        if not isinstance(label, str) or label in labels:
            continue
        guess = closest(label, labels)
        hint = f"did you mean '{guess}'?" if guess else f"Close has {', '.join(labels[:12])}"
        reason = f"Close has no opportunity status labelled '{label}'; {hint}"
        yield UnknownField(rule.name, f"status: {label}", reason)
