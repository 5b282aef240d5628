"""How `dealkeeper explain` tells an explanation, and the events it can start from."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from service.authoring.explain import event_from_json, event_from_opportunity, format_explanation
from service.core.rules import explain_plan, load_rules
from tests.unit.rules_support import make_event
from tests.unit.test_engine import DESIGN_RULES

DRY_CONFIDENCE = load_rules(
    DESIGN_RULES.replace(
        "  - name: full-confidence-when-won\n",
        "  - name: full-confidence-when-won\n    dry_run: true\n",
    ),
    "rules/t.yaml",
)
WON = make_event(
    date_created="2026-11-28T03:30:00Z",
    changed_fields=["status_type"],
    previous_data={"status_type": "active"},
    data={
        "status_type": "won",
        "confidence": 80,
        "value": 2000000,
        "date_won": "2026-11-27",
        "custom.Segment": ["SMB"],
    },
)


def test_explain_tells_every_rule_condition_and_the_update() -> None:
    """Fired rules, each condition with its values, the update, and what was left out of it."""
    lines = format_explanation(
        explain_plan(DRY_CONFIDENCE, WON, metadata=None), event=WON, context="rules: x"
    )

    assert [
        "event ev_1: opportunity.updated of oppo_1 at 2026-11-28 03:30:00 UTC",
        "changed: status_type",
        "rules: x",
        "",
        "FIRED      stamp-date-won (rules/t.yaml:5)",
        '  yes  status_type went "active" -> "won"; test: changed_to "won"  (rules/t.yaml:9:9)',
        '  writes date_won = "2026-11-27" (now "2026-11-27")',
        "",
        "FIRED      tag-big-deals (rules/t.yaml:13)",
        "  yes  value is 2000000; test: gte 1000000  (rules/t.yaml:16:9)",
        '  yes  custom.Segment is ["SMB"]; test: not_contains "Enterprise"  (rules/t.yaml:17:9)',
        '  writes custom.Segment += "Enterprise" (now ["SMB"])',
        "",
        "FIRED      full-confidence-when-won [dry run] (rules/t.yaml:21)",
        '  yes  status_type is "won"; test: eq "won"  (rules/t.yaml:24:9)',
        "  yes  confidence is 80; test: lt 100  (rules/t.yaml:25:9)",
        "  writes confidence = 100 (now 80)",
        "",
        "update: one PUT opportunity/oppo_1/ with x-tz-offset -5",
        '  custom.Segment.add = "Enterprise"  (from tag-big-deals)',
        "left out of the update:",
        "  date_won from stamp-date-won: already holds",
        "  confidence from full-confidence-when-won: dry run",
        "dry run (logged by the worker, never sent):",
        "  confidence = 100",
        "",
        "(explain only reads: nothing was written to Close)",
    ] == lines


def test_explain_names_the_failing_condition_and_a_conflict() -> None:
    """A rule that did not fire says why; two rules writing one field show who won."""
    rules = load_rules(
        "rules:\n"
        "  - name: a\n    then: [{set: {confidence: 1}}]\n"
        "  - name: b\n    then: [{set: {confidence: 2}}]\n"
        "  - name: c\n    if: [{value: {gt: 10}}]\n    then: [{set: {note: big}}]\n",
        "rules/t.yaml",
    )
    event = make_event(data={"value": 3})

    lines = format_explanation(explain_plan(rules, event, metadata=None), event=event, context="")

    assert "not fired  c (rules/t.yaml:6)" in lines
    assert "  why: value 3 gt 10 is false (rules/t.yaml:7:11)" in lines
    assert "conflict: confidence: 'a' wrote 1, 'b' wrote 2 and won (the later rule wins)" in lines


def test_explain_ignored_event_says_why() -> None:
    """An event the engine ignores is told in one line, without rules."""
    event = make_event(object_type="lead")

    lines = format_explanation(
        explain_plan(DRY_CONFIDENCE, event, metadata=None), event=event, context=""
    )

    assert "ignored: not an opportunity event: lead.updated; no rule is evaluated" in lines


def test_explain_reads_a_webhook_body_or_a_bare_event() -> None:
    """A file may hold Close's webhook body or an event as the event log lists it."""
    event = {
        "id": "ev_9",
        "object_type": "opportunity",
        "action": "created",
        "object_id": "oppo_9",
        "date_created": "2026-01-02T03:04:05",
        "data": {"value": 1},
    }
    wrapped = json.dumps({"subscription_id": "whsub_1", "event": event})

    assert event_from_json(json.dumps(event)).id == event_from_json(wrapped).id == "ev_9"


def test_explain_opportunity_becomes_a_fresh_update_that_changed_nothing() -> None:
    """--opportunity: the current state, as an updated event at the given moment."""
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)

    event = event_from_opportunity({"id": "oppo_5", "value": 7}, now=now)

    assert ("updated", "oppo_5", now, (), {"id": "oppo_5", "value": 7}) == (
        event.action,
        event.object_id,
        event.date_created,
        event.changed_fields,
        dict(event.data),
    )
