"""Reasons: why each rule did not fire, written only when someone reads it.

A plan against a thousand rules carries hundreds of reasons, and a worker usually reads none
of them: spelling each out (the values compared, as JSON) cost more than deciding the plan.
So the plan keeps which rules fired and asks judge, the interpreter, for another rule's
sentence the first time it is read. The sentence is therefore exactly the one judge writes,
and reading it later gives the same text, as the event and the metadata are immutable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from service.core.events import Event
from service.core.rules.evaluation.verdicts import judge
from service.core.rules.model import Metadata, Rule


class Reasons(Mapping[str, str]):
    """Rule name -> why it did not fire, in rule order; each made on first read, then kept."""

    __slots__ = ("_event", "_fired", "_made", "_metadata", "_rules", "_unfired")

    def __init__(
        self,
        rules: tuple[Rule, ...],
        *,
        fired: Iterable[int],
        event: Event,
        metadata: Metadata | None,
    ) -> None:
        self._rules = rules
        self._fired = fired  # the places in `rules` of the rules that fired
        self._event = event
        self._metadata = metadata
        self._unfired: dict[str, Rule] | None = None
        self._made: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        made = self._made.get(name)
        if made is None:
            rule = self._not_fired()[name]  # KeyError for a rule that fired or does not exist
            made = self._made[name] = judge(rule, self._event, metadata=self._metadata).reason
        return made

    def __contains__(self, name: object) -> bool:
        # Mapping's own __contains__ would write the sentence just to say it exists.
        return name in self._not_fired()

    def __iter__(self) -> Iterator[str]:
        return iter(self._not_fired())

    def __len__(self) -> int:
        return len(self._not_fired())

    def considered(self) -> list[str]:
        """The rules that did not fire although enabled and triggered by the event, in rule
        order: the ones whose reason is about the event's values (the others' reason is
        'disabled' or the trigger, the same for every event of the kind)."""
        trigger = self._event.trigger
        return [
            name
            for name, rule in self._not_fired().items()
            if rule.enabled and trigger in rule.triggers
        ]

    def __repr__(self) -> str:
        return repr(dict(self))

    def _not_fired(self) -> dict[str, Rule]:
        # By name, as a dict comprehension over every rule's verdict would have them.
        if self._unfired is None:
            fired = set(self._fired)
            self._unfired = {r.name: r for i, r in enumerate(self._rules) if i not in fired}
        return self._unfired
