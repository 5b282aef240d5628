"""The deal-hygiene report's reading of Close: every sweep rule and report check, its deals
listed and judged exactly as a sweep lists and judges them (sweeps/run.py's Sweeper, in
dry run: it queues and writes nothing), then counted by service/core/hygiene.py.

Close's list endpoint documents `_group_by`, but we have no example of its answer; and a
sweep rule's or check's `if` (custom fields, `older_than`, `any`) is more than Close can
filter on, so the deals are listed (only the fields the judging and the grouping need) and
counted here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.adapters.close import JSONAPI
from service.core.hygiene import CheckCount, CheckKind, JudgedDeal
from service.core.rules import Metadata, Plan, Rule, RuleSet
from service.core.rules.model import FindFilter
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.run import Sweeper, would_change

# What the report groups and sums by, beside what the rule itself reads.
REPORT_FIELDS = ("user_id", "user_name", "pipeline_id", "pipeline_name", "value")

Listing = Callable[[Sweeper], Progress]  # pages through a sweeper to its end


@dataclass(frozen=True)
class Check:
    """One line of the report: a rule to judge by, the ruleset it runs in, and its find."""

    rule: Rule
    ruleset: RuleSet
    kind: CheckKind
    find: tuple[FindFilter, ...]
    description: str


def report_checks(ruleset: RuleSet) -> list[Check]:
    """Every enabled sweep rule, then every report check, in file order."""
    found = [
        Check(rule, ruleset, "sweep rule", rule.sweep.filters, rule.description)
        for rule in ruleset.sweep_rules
        if rule.enabled and rule.sweep is not None
    ]
    found.extend(
        Check(c.rule, RuleSet(rules=(c.rule,)), "report check", c.filters, c.description)
        for c in ruleset.checks
    )
    return found


def count(
    check: Check,
    *,
    client: JSONAPI,
    metadata: Metadata | None,
    moment: datetime,
    listing: Listing,
) -> CheckCount:
    """List the check's deals at `moment` and count those that fail it."""
    counted = CheckCount(check.rule.name, check.kind, check.description)
    seen: set[Any] = set()

    def observe(deal: Mapping[str, Any], plan: Plan) -> None:
        if deal.get("id") in seen:  # paging may list a deal twice (sweeps/paging.py)
            return
        seen.add(deal.get("id"))
        counted.add(JudgedDeal.of(deal, fails=_fails(check, plan)))

    sweeper = Sweeper(
        check.rule,
        ruleset=check.ruleset,
        moment=moment,
        client=client,
        metadata=metadata,
        find=check.find,
        extra_fields=REPORT_FIELDS,
        observe=observe,
    )
    listing(sweeper)
    return counted


def _fails(check: Check, plan: Plan) -> bool:
    if check.kind == "sweep rule":
        return would_change(plan, check.rule)  # the deals the sweep would write to
    return check.rule.name in plan.fired
