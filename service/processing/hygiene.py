"""The deal-hygiene report's reading of Close: every sweep rule and report check, its deals
listed and judged exactly as a sweep lists and judges them (sweeps/run.py's Sweeper, in
dry run: it queues and writes nothing), then counted by service/core/hygiene.py.

Close's list endpoint documents `_group_by`, but we have no example of its answer; and a
sweep rule's or check's `if` (custom fields, `older_than`, `any`) is more than Close can
filter on, so the deals are listed (only the fields the judging and the grouping need) and
counted here.

`refresh_report` is the RQ job the console's report page queues (adapters/reportcache.py):
the same report, computed by a worker through its shared rate limit, kept in Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.adapters import reportcache
from service.adapters.close import JSONAPI
from service.config.errors import CloseRateLimitedError, DealkeeperError
from service.core.hygiene import CheckCount, CheckKind, JudgedDeal
from service.core.hygieneout import as_document
from service.core.rules import Metadata, Plan, Rule, RuleSet
from service.core.rules.model import FindFilter
from service.processing import jobs
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.run import Sweeper, run_sweep, would_change

log = logging.getLogger(__name__)

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


def compute(
    ruleset: RuleSet,
    *,
    client: JSONAPI,
    metadata: Metadata | None,
    moment: datetime,
    listing: Listing,
) -> list[CheckCount]:
    """The report of every check of `ruleset` at `moment` (`dealkeeper report`, the job)."""
    return [
        count(c, client=client, metadata=metadata, moment=moment, listing=listing)
        for c in report_checks(ruleset)
    ]


def refresh_report() -> dict[str, Any]:
    """RQ job: compute the report with the rules in force and keep it for the console.

    It never raises for what Close or the rules do: the failure is kept for the page to
    show, and the guard let go, so the job never lands among the parked events."""
    context = jobs.installed()
    started = time.time()
    moment = datetime.fromtimestamp(started, UTC).replace(microsecond=0)
    try:
        ruleset = context.rules.current()
        counts = compute(
            ruleset,
            client=context.close,
            metadata=context.metadata.get(),
            moment=moment,
            listing=_within(started + reportcache.REFRESH_BUDGET_SEC),
        )
        report = as_document(counts, computed_at=moment, digest=ruleset.digest)
        reportcache.store_report(context.connection, report, computed_at=started)
    except DealkeeperError as error:  # the rules' InvalidRulesError, Close's errors
        reportcache.store_failure(context.connection, _why(error), at=time.time())
        log.warning("report_not_refreshed", extra={"error": str(error)})
        return {"refreshed": False}
    finally:
        reportcache.refresh_ended(context.connection)
    took = round(time.time() - started, 1)
    log.info("report_refreshed", extra={"checks": len(counts), "took_sec": took})
    return {"refreshed": True, "checks": len(counts)}


def _within(deadline: float) -> Listing:
    """Every page, unless the refresh's time budget runs out first (a worker is not held
    for longer than that: the report is then not kept, and the page says why)."""

    def listing(sweeper: Sweeper) -> Progress:
        progress = run_sweep(sweeper, Progress(), keep_going=lambda _: time.time() < deadline)
        if not progress.done:
            budget = reportcache.REFRESH_BUDGET_SEC // 60
            raise DealkeeperError(
                f"listing {sweeper.rule.name}'s deals took longer than the refresh's budget of"
                f" {budget} minutes ({progress.tally.listed} deals listed); `dealkeeper report`"
                " has no budget"
            )
        return progress

    return listing


def _why(error: DealkeeperError) -> str:
    if isinstance(error, CloseRateLimitedError):
        return (
            f"Close's rate limit asked to wait {error.retry_after_sec:.0f} s; the report is"
            " refreshed at a later page load or with Refresh now"
        )
    return f"{type(error).__name__}: {error}"
