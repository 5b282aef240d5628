"""`dealkeeper validate`'s warning about writes of fields no documented PUT takes."""

from __future__ import annotations

from service.authoring.writability import find_undocumented_writes
from service.core.rules import load_rules


def test_documented_fields_custom_fields_and_disabled_rules_are_not_warned_of() -> None:
    """Only a rule in force writing lead_id is warned of, at the key it writes."""
    ruleset = load_rules(
        "rules:\n"
        "  - name: fine\n"
        "    then: [{set: {status: Won, value: 1, custom.Segment: SMB}}, {add: {custom.Tags: A}}]\n"
        "  - name: off\n"
        "    enabled: false\n"
        "    then: [{set: {date_lost: '2026-01-01T00:00:00+00:00'}}]\n"
        "  - name: moves\n"
        "    then: [{set: {lead_id: lead_2}}]\n",
        "r.yaml",
    )

    found = find_undocumented_writes(ruleset)

    assert [("r.yaml", 8, 19, "lead_id")] == [
        (w.file, w.line, w.column, w.message.split(" writes ")[1].split(",")[0]) for w in found
    ]
