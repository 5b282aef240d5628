"""The rule engine: rule files in, plans out. Pure, apart from `load_rules_path` and `run_path`.

ruleset = load_rules_path("rules/")
plan = make_plan(ruleset, event, metadata=metadata, own_api_key_ids=frozenset({key_id}))
explanation = explain_plan(ruleset, event, metadata=metadata)  # the same plan, with traces
"""

from __future__ import annotations

from service.rules.cases import CaseResult, CasesReport, discover, load_cases, run_case, run_path
from service.rules.conditions import Outcome
from service.rules.dates import local_date, utc_offset_hours
from service.rules.engine import make_plan
from service.rules.loader import load_rule_sources, load_rules, load_rules_path
from service.rules.model import (
    Conflict,
    CustomField,
    Dropped,
    Metadata,
    Plan,
    Rule,
    RuleSet,
    Status,
)
from service.rules.schema import json_schema
from service.rules.trace import ConditionTrace, Explanation, RuleTrace, explain_plan

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
