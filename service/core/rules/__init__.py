"""The rule engine: rule files in, plans out. Pure, apart from `load_rules_path` and `run_path`.

ruleset = load_rules_path("rules/")
plan = make_plan(ruleset, event, metadata=metadata, own_api_key_ids=frozenset({key_id}))
explanation = explain_plan(ruleset, event, metadata=metadata)  # the same plan, with traces

Two stories, one folder each: language/ (YAML rule and test files in, a RuleSet or
positioned problems out) and evaluation/ (an event and a RuleSet in, a Plan out). Beside
them the modules both read: model.py (rules, metadata and plans as data), spec.py (the
language's vocabulary as tables), cron.py (schedules) and suggest.py (did-you-mean).
language/ may import evaluation/, never the reverse. The names below are the surface the
rest of the service uses; modules inside this package import each other, never this file.
"""

from __future__ import annotations

from service.core.rules.evaluation.conditions import Outcome
from service.core.rules.evaluation.dates import local_date, utc_offset_hours
from service.core.rules.evaluation.engine import make_plan
from service.core.rules.evaluation.trace import ConditionTrace, Explanation, RuleTrace, explain_plan
from service.core.rules.language.cases import (
    CaseResult,
    CasesReport,
    discover,
    load_cases,
    run_case,
    run_path,
)
from service.core.rules.language.loader import load_rule_sources, load_rules, load_rules_path
from service.core.rules.language.schema import json_schema
from service.core.rules.model import (
    Conflict,
    CustomField,
    Dropped,
    Metadata,
    Plan,
    Rule,
    RuleSet,
    Status,
)

__all__ = [
    "CaseResult",
    "CasesReport",
    "ConditionTrace",
    "Conflict",
    "CustomField",
    "Dropped",
    "Explanation",
    "Metadata",
    "Outcome",
    "Plan",
    "Rule",
    "RuleSet",
    "RuleTrace",
    "Status",
    "discover",
    "explain_plan",
    "json_schema",
    "load_cases",
    "load_rule_sources",
    "load_rules",
    "load_rules_path",
    "local_date",
    "make_plan",
    "run_case",
    "run_path",
    "utc_offset_hours",
]
