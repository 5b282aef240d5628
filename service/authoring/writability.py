"""Warnings about rules that write a field no PUT of Close's documents takes.

Rules may write every field spec.py marks writable, but a few of those appear in Close's
documents only in its answers (or only in a POST). Close's validation ignores keys it
does not take and still answers 200 (close-api-notes.md section 7), so such a write may
silently do nothing; dealkeeper notices afterwards (write_not_taken, service/core/writecheck.py).
This says so before the rule ships.
"""

from __future__ import annotations

from collections.abc import Iterator

from service.authoring.interactions import RuleWarning
from service.core.rules import spec
from service.core.rules.model import Action, Rule, RuleSet

# The fields Close documents a PUT /opportunity/{id}/ as taking:
# - Close's Opportunities page (reference/close-opportunities-api.txt, "Update an
#   opportunity", https://developer.close.com/api/resources/opportunities/update) names
#   `date_won`, `status_id` and `custom.FIELD_ID` (with `.add`/`.remove`, null unsets);
# - the request schema of that PUT in Close's published OpenAPI spec (`UpdateOpportunity`)
#   lists attachments, confidence, contact_id, date_won, note, note_html, status (the
#   deprecated label), status_id, user_id, value, value_period, and `custom.` keys.
# Every other field is documented only in answers (`date_lost`; `lead_id` and `pipeline_id`
# are documented for a POST only). spec.py already refuses the fields Close computes.
DOCUMENTED_PUT_FIELDS = frozenset(
    {
        "confidence",
        "contact_id",
        "date_won",
        "note",
        "status",
        "status_id",
        "user_id",
        "value",
        "value_period",
    }
)
_INSTEAD = {"pipeline_id": "set status or status_id (a status of that pipeline) instead"}


def find_undocumented_writes(ruleset: RuleSet) -> list[RuleWarning]:
    """A warning for each write, by a rule in force, of a field no documented PUT takes."""
    found = [w for rule in ruleset.rules if rule.enabled for w in _undocumented(rule)]
    return sorted(found)


def _undocumented(rule: Rule) -> Iterator[RuleWarning]:
    for action in rule.actions:
        if not _documented(action.field):
            yield _warning(rule, action)


def _documented(field: str) -> bool:
    return field.startswith(spec.CUSTOM_PREFIX) or field in DOCUMENTED_PUT_FIELDS


def _warning(rule: Rule, action: Action) -> RuleWarning:
    message = (
        f"rule '{rule.name}' writes {action.field}, which Close's documents do not list among "
        "the fields a PUT takes: Close may answer 200 and leave it as it was (dealkeeper "
        "then logs write_not_taken)"
    )
    instead = _INSTEAD.get(action.field)
    if instead:
        message = f"{message}; {instead}"
    where = action.position
    return RuleWarning(where.file, where.line, where.column, message)
