"""Each way the engine evaluates `matches`, run once on a pattern and a text chosen to make a
backtracking matcher take forever: `python -m tests.unit.hostile PATH`.

test_patterns.py runs every path in a process of its own, so that a path that hangs can be
killed: a thread could not be, and Python's re holds the GIL for the whole search.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from service.authoring.interactions import find_interactions
from service.core.rules import explain_plan, load_rules, make_plan
from service.core.rules.evaluation.conditions import Scope, evaluate
from service.core.rules.evaluation.facts import Facts
from service.core.rules.evaluation.predicates import compile_condition
from service.core.rules.model import Condition, Position
from tests.unit.rules_support import make_event

PATTERN = "^(a+)+$"
# 100,000 characters: as long as a condition reads (MAX_TEXT_CHARS), so the cut leaves it
# whole and the b at its end makes every attempt fail. A backtracking matcher tries each of
# the 2**99,999 ways to split the a's among the groups; 29 a's already take it 20 s.
TEXT = "a" * 99_999 + "b"
CONDITION = Condition("note", "matches", PATTERN, Position("rules/x.yaml", 1, 1))
RULES = f"""\
rules:
  - name: reads-the-note
    if: [{{note: {{matches: '{PATTERN}'}}}}]
    then: [{{set: {{confidence: 1}}}}]
"""
WRITER = f"""\
  - name: writes-the-note
    then: [{{set: {{note: '{TEXT}'}}}}]
"""


def interpreter() -> None:
    """conditions.py: judge, reasons, explain and `dealkeeper test` read rules this way."""
    evaluate(CONDITION, Scope(make_event(data={"note": TEXT}), None, "UTC"))


def compiled() -> None:
    """predicates.py: the fast form make_plan runs."""
    compile_condition(CONDITION, "UTC")(Facts(make_event(data={"note": TEXT}), None))


def plan() -> None:
    """make_plan, and the reason the rule did not fire (written by the interpreter)."""
    ruleset = load_rules(RULES, "rules/x.yaml")
    made = make_plan(ruleset, make_event(data={"note": TEXT}), metadata=None)
    dict(made.reasons_not_fired)


def explain() -> None:
    """explain_plan: `dealkeeper explain` and replay trace every condition."""
    ruleset = load_rules(RULES, "rules/x.yaml")
    explain_plan(ruleset, make_event(data={"note": TEXT}), metadata=None)


def interactions() -> None:
    """`dealkeeper validate`'s warnings try a value one rule writes on another's condition."""
    find_interactions(load_rules(RULES + WRITER, "rules/x.yaml"))


PATHS: dict[str, Callable[[], None]] = {
    "interpreter": interpreter,
    "compiled": compiled,
    "plan": plan,
    "explain": explain,
    "interactions": interactions,
}

if __name__ == "__main__":
    PATHS[sys.argv[1]]()
