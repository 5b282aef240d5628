"""A warning for rules that wait on a change Close may never report.

Close's list of event types says `opportunity.updated` "is triggered when any of the
opportunity's basic fields change, e.g. status, date_won, value, value_period, confidence";
it names custom field values only for leads (developer.close.com, Events, list of event
types). So a rule that can fire on an update only when a custom field shows as changed
(`changed`, `changed_from`, `changed_to`) may never fire on one. A created event is fine:
every field counts as changed from null there.

Found by reading the rules alone: a rule warns when its conditions cannot hold on an
update that reports no custom field as changed.
"""

from __future__ import annotations

from service.authoring.interactions import UPDATED, RuleWarning
from service.core.rules.evaluation.fields import condition_leaves, custom_ref
from service.core.rules.evaluation.values import show
from service.core.rules.model import AllOf, AnyOf, Condition, ConditionNode, Not, Rule, RuleSet
from service.core.rules.spec import CHANGE_OPERATORS

# What a condition can come to: True, False, or both when it depends on the event.
_Outcomes = frozenset[bool]
_EITHER: _Outcomes = frozenset({True, False})


def find_unreported_changes(ruleset: RuleSet) -> list[RuleWarning]:
    """A warning for every rule in force that fires on updates only through a custom field
    reported as changed, at its first such condition."""
    return [w for rule in ruleset.rules if (w := _warning(rule)) is not None]


def _warning(rule: Rule) -> RuleWarning | None:
    if not rule.enabled or rule.is_sweep or UPDATED not in rule.triggers:
        return None
    if True in _outcomes(rule.condition):
        return None  # it can fire on an update that reports no custom field
    tests = [t for t in condition_leaves(rule.condition) if _is_custom_change(t)]
    if not tests:
        return None  # it can never fire at all, and that is not this warning's business
    named = "; ".join(f"{t.field} {t.operator} {show(t.operand)}" for t in tests)
    message = (
        f"rule '{rule.name}' fires on {UPDATED} only when Close reports a custom field as "
        f"changed ({named}), but Close documents {UPDATED} for changes of an opportunity's "
        "basic fields (status, date_won, value, value_period, confidence), not its custom "
        "fields: it may never fire on an update. Test the field's value instead (without "
        "changed, changed_from or changed_to), or make it a sweep rule (schedule and find) "
        "that checks deals as they are"
    )
    where = tests[0].position
    return RuleWarning(where.file, where.line, where.column, message)


def _outcomes(node: ConditionNode) -> _Outcomes:
    """What the condition can come to on an update that reports no custom field changed."""
    if isinstance(node, Condition):
        if not _is_custom_change(node):
            return _EITHER
        # Unchanged: `changed: false` holds, `changed: true` and changed_from/_to do not.
        return frozenset({node.operator == "changed" and node.operand is False})
    if isinstance(node, Not):
        return frozenset(not outcome for outcome in _outcomes(node.condition))
    parts = [_outcomes(child) for child in node.conditions]
    if isinstance(node, AllOf):
        return _combine(all(True in p for p in parts), any(False in p for p in parts))
    assert isinstance(node, AnyOf)
    return _combine(any(True in p for p in parts), all(False in p for p in parts))


def _combine(can_hold: bool, can_fail: bool) -> _Outcomes:
    return frozenset(
        outcome for outcome, possible in ((True, can_hold), (False, can_fail)) if possible
    )


def _is_custom_change(test: Condition) -> bool:
    return test.operator in CHANGE_OPERATORS and custom_ref(test.field) is not None
