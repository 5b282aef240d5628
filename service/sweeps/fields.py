"""Which fields a sweep asks Close for (`_fields`): what its rule reads and writes, and what
the job needs, so a page of 200 deals stays small.

Written fields are read too: an update part that already holds is left out, and only the
current value tells. A rule with a template may read any field, so it gets whole deals.
"""

from __future__ import annotations

from collections.abc import Iterator

from service.rules import spec
from service.rules.fields import STATUS_FIELD, condition_fields, custom_ref, field_ref
from service.rules.model import DateOfExpr, Metadata, Rule, TemplateExpr

# id and date_created place the deal and page by it; date_updated tells the job whether
# the deal changed since it was listed (service/reconcile.py).
JOB_FIELDS = ("id", "date_created", "date_updated")
# A status is set by label within the deal's pipeline; the status change is looked up by it.
STATUS_FIELDS = ("status_id", "status_label", "status_type", "pipeline_id")
# For a custom field name the metadata does not resolve: every custom field.
ALL_CUSTOM = "custom"


def fields_param(rule: Rule, metadata: Metadata | None) -> str | None:
    """`_fields` for the sweep's page requests; None asks for whole deals."""
    if any(_has_template(action.value) for action in rule.actions):
        return None
    wanted = dict.fromkeys(JOB_FIELDS)
    for name in read_fields(rule):
        wanted.update(dict.fromkeys(_keys(name, metadata)))
    return ",".join(wanted)


def reads_status_change(rule: Rule) -> bool:
    """True when the rule reads `date_status_changed`, which the sweep looks up itself."""
    return "date_status_changed" in read_fields(rule)


def reads_status_change_in_if(rule: Rule) -> bool:
    """True when the rule's conditions (not only its writes) read `date_status_changed`."""
    return "date_status_changed" in condition_fields(rule.condition)


def read_fields(rule: Rule) -> list[str]:
    """Every field the rule reads or writes, as written in it."""
    names = list(condition_fields(rule.condition))
    for action in rule.actions:
        names.append(action.field)
        if isinstance(action.value, DateOfExpr):
            names.extend(action.value.fields)
    return names


def _keys(name: str, metadata: Metadata | None) -> Iterator[str]:
    if name in spec.SWEEP_ONLY_FIELDS:
        yield from STATUS_FIELDS  # not Close's: looked up from the status it names
    elif name == STATUS_FIELD:
        yield from STATUS_FIELDS
    elif custom_ref(name) is None:
        yield name
    else:
        ref = field_ref(name, metadata) if metadata is not None else None
        yield ALL_CUSTOM if ref is None else ref.key


def _has_template(value: object) -> bool:
    if isinstance(value, list):
        return any(_has_template(item) for item in value)
    return isinstance(value, TemplateExpr)
