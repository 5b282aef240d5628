"""Which fields a sweep asks Close for (`_fields`): what its rule reads and writes, and what
the job needs, so a page of 200 deals stays small.

Written fields are read too: an update part that already holds is left out, and only the
current value tells. A rule with a template may read any field, so it gets whole deals.
So does a rule that reads or writes a custom field: Close documents `_fields` naming
custom fields (`custom`, `custom.cf_X`) for leads only, and a list that ignored them for
opportunities would look exactly like deals whose fields are empty (Close leaves a field
without a value out of a deal), so only whole deals are sure to carry them.
"""

from __future__ import annotations

from collections.abc import Iterator

from service.core.rules import spec
from service.core.rules.evaluation.fields import STATUS_FIELD, condition_fields, custom_ref
from service.core.rules.model import DateOfExpr, Rule, TemplateExpr

# id and date_created place the deal and page by it; date_updated dates the listed state
# for the job, which tells our own later writes from it (service/core/reconcile.py).
JOB_FIELDS = ("id", "date_created", "date_updated")
# A status is set by label within the deal's pipeline; the status change is looked up by it.
STATUS_FIELDS = ("status_id", "status_label", "status_type", "pipeline_id")


def fields_param(rule: Rule) -> str | None:
    """`_fields` for the sweep's page requests; None asks for whole deals."""
    names = read_fields(rule)
    templated = any(_has_template(action.value) for action in rule.actions)
    if templated or any(custom_ref(name) is not None for name in names):
        return None  # any field, or custom fields: only whole deals are sure to hold them
    wanted = dict.fromkeys(JOB_FIELDS)
    for name in names:
        wanted.update(dict.fromkeys(_keys(name)))
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


def _keys(name: str) -> Iterator[str]:
    if name in spec.SWEEP_ONLY_FIELDS:
        yield from STATUS_FIELDS  # not Close's: looked up from the status it names
    elif name == STATUS_FIELD:
        yield from STATUS_FIELDS
    else:
        yield name


def _has_template(value: object) -> bool:
    if isinstance(value, list):
        return any(_has_template(item) for item in value)
    return isinstance(value, TemplateExpr)
