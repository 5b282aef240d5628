"""Rules compiled for make_plan: per rule a predicate, the custom fields to check and the
writes; per trigger the rules that can run on it.

A RuleSet is compiled once (the loader does it as it loads; a RuleSet built any other way is
compiled the first time make_plan meets it) and the result is kept on the RuleSet itself, as
a cache that is not part of its value. Per event, a rule then costs a closure call or two
instead of walking and explaining its tree, and a rule that cannot run costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.core.rules.evaluation.actions import Part, resolve_actions
from service.core.rules.evaluation.facts import Facts
from service.core.rules.evaluation.fields import (
    STATUS_FIELD,
    condition_fields,
    custom_ref,
    standard_key,
)
from service.core.rules.evaluation.predicates import Predicate, compile_condition
from service.core.rules.model import Action, ActionKind, Rule, RuleSet

# Whether a rule fires for an event, as judge decides it for a rule that can run (enabled,
# and named the event's trigger); if it does, its parts are appended to the list. Names it
# could not resolve go to the dict (an ordered set).
Fire = Callable[[Facts, list[Part], dict[str, None]], bool]
# One write whose value is known before any event: kind, Close's key, the literal value.
Write = tuple[ActionKind, str, Any]


@dataclass(frozen=True)
class Program:
    """One rule, ready to run against many events."""

    index: int  # the rule's place in its RuleSet
    rule: Rule
    holds: Predicate  # the rule's `if`
    fire: Fire


# What the engine runs per rule: its fire, whether it is a dry run, its place in the RuleSet.
# A plain tuple, so that a thousand of them are walked without touching the rules.
Step = tuple[Fire, bool, int]


@dataclass(frozen=True)
class Compiled:
    """A RuleSet's programs, and for each trigger the steps of enabled rules that name it."""

    programs: tuple[Program, ...]
    by_trigger: Mapping[str, tuple[Step, ...]]

    def runnable(self, trigger: str) -> tuple[Step, ...]:
        """The steps that run on an event with this trigger, in rule order."""
        return self.by_trigger.get(trigger, ())


def compiled_rules(ruleset: RuleSet) -> Compiled:
    """The compiled form of `ruleset` (made on the first call, then kept on it)."""
    found = ruleset.compiled
    if not isinstance(found, Compiled):
        found = compile_rules(ruleset.rules)
        # A cache on the frozen RuleSet, made from its own rules alone.
        object.__setattr__(ruleset, "compiled", found)
    return found


def compile_rules(rules: tuple[Rule, ...]) -> Compiled:
    """Every rule compiled, and grouped by the triggers that run it."""
    programs = tuple(compile_rule(rule, index=i) for i, rule in enumerate(rules))
    triggers = dict.fromkeys(t for rule in rules for t in rule.triggers)
    by_trigger = {
        t: tuple(
            (p.fire, p.rule.dry_run, p.index)
            for p in programs
            if p.rule.enabled and t in p.rule.triggers
        )
        for t in triggers
    }
    return Compiled(programs, by_trigger)


def compile_rule(rule: Rule, *, index: int = 0) -> Program:
    """The Program of one rule."""
    holds = compile_condition(rule.condition, rule.timezone)
    fields = condition_fields(rule.condition)
    custom_fields = tuple(dict.fromkeys(f for f in fields if custom_ref(f) is not None))
    write = _literal_writer(rule) or _resolving_writer(rule)

    def fire(facts: Facts, parts: list[Part], unresolved: dict[str, None]) -> bool:
        return holds(facts) and write(facts, parts, unresolved)

    def fire_if_known(facts: Facts, parts: list[Part], unresolved: dict[str, None]) -> bool:
        # Like judge: a custom field the metadata does not know stops the rule first.
        unknown = facts.unknown_names(custom_fields)
        if unknown:
            unresolved.update(dict.fromkeys(unknown))
            return False
        return holds(facts) and write(facts, parts, unresolved)

    return Program(index, rule, holds, fire_if_known if custom_fields else fire)


def _resolving_writer(rule: Rule) -> Fire:
    """Writes resolved per event, as judge resolves them (resolve_actions)."""

    def write(facts: Facts, parts: list[Part], unresolved: dict[str, None]) -> bool:
        resolved = resolve_actions(rule, event=facts.event, metadata=facts.metadata)
        if resolved.failures:
            unresolved.update(dict.fromkeys(resolved.unresolved))
            return False
        parts.extend(resolved.parts)
        return True

    return write


def _literal_writer(rule: Rule) -> Fire | None:
    """The writes of a rule whose actions all write literal values to standard fields, made
    without resolving anything; None for any other rule (a status label, a custom field, a
    date, a template, a list)."""
    writes: list[Write] = []
    for action in rule.actions:
        key = standard_key(action.field)
        values = _literal_values(action)
        if key is None or values is None or (action.field, action.kind) == (STATUS_FIELD, "set"):
            return None
        writes.extend((action.kind, key, value) for value in values)
    name = rule.name

    def write(facts: Facts, parts: list[Part], unresolved: dict[str, None]) -> bool:
        state = facts.state
        parts.extend([Part(name, kind, key, value, state.get(key)) for kind, key, value in writes])
        return True

    if len(writes) != 1:
        return write
    [(kind, key, value)] = writes

    def write_one(facts: Facts, parts: list[Part], unresolved: dict[str, None]) -> bool:
        parts.append(Part(name, kind, key, value, facts.state.get(key)))
        return True

    return write_one


def _literal_values(action: Action) -> list[Any] | None:
    # As resolve_actions takes them: add and remove write each value of a list, set writes
    # its value whole (a list is copied per event there, so it is not shared here).
    value = action.value
    values = value if action.kind != "set" and isinstance(value, list) else [value]
    return values if all(_is_literal(v) for v in values) else None


def _is_literal(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
