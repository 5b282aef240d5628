"""A real event as a rule test case (`dealkeeper test --add-case`), written as YAML text.

Pure: the command fetches the event and Close's metadata and reads and writes the file;
this module scrubs the event, works out what today's rules do with it, and renders the case
as text to append after a test file's last case (never a re-dump of the file: its comments
and layout stay as they are). `appended` refuses what would not load back as the same file
plus this one case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, SequenceNode

from service.authoring.anonymize import scrub_event
from service.authoring.naming import CUSTOM_PREFIX, field_names, readable_key
from service.config.errors import InvalidRulesError
from service.core.events import EnvelopeError, Event, event_from_dict
from service.core.rules import Metadata, Plan, Rule, RuleSet, load_cases, make_plan, run_case
from service.core.rules.evaluation.fields import condition_fields
from service.core.rules.language.casefile import EVENT_KEYS, EXPECT_KEYS
from service.core.rules.language.yamlnodes import Report, Yaml12Loader, compose, keyed, to_python
from service.core.rules.model import DateOfExpr

DEFAULT_CASES_FILE = "cases.test.yaml"
NO_UPDATE = "no-update"
DEFAULT_INDENT = 2
NEW_FILE_HEADER = "# Rule tests; run them with `dealkeeper test`.\n"


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting also each text a YAML 1.2 reader (the one rule tests
    are read with) would take for a number: `0o17` and `1e3` stay text."""


for _first, _resolvers in Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _pattern in _resolvers:
        _Dumper.add_implicit_resolver(_tag, _pattern, [_first])


class AddCaseError(Exception):
    """The case cannot be added; the message says why and what to do."""


@dataclass(frozen=True)
class NewCase:
    """One case made from a real event, ready to be written."""

    name: str
    event: dict[str, Any]  # scrubbed, only the keys a case's event takes
    expect: dict[str, Any]
    metadata: Metadata | None
    plan: Plan  # what today's rules do with the scrubbed event
    replaced: frozenset[str]  # keys whose text became a placeholder
    scrub_changed_plan: bool  # the real event's plan differs: a rule reads a replaced text


def covering_rules(ruleset: RuleSet, event: Event) -> list[Rule]:
    """The enabled rules whose triggers include the event's."""
    return [r for r in ruleset.rules if r.enabled and event.trigger in r.triggers]


def new_case(
    ruleset: RuleSet,
    raw: Mapping[str, Any],
    *,
    metadata: Metadata | None,
    name: str | None = None,
    expect: Mapping[str, Any] | None = None,
) -> NewCase:
    """The case for Close's event `raw`: scrubbed, with today's plan (or `expect`)."""
    real = _event(raw)
    if not covering_rules(ruleset, real):
        triggers = sorted({t for r in ruleset.rules if r.enabled for t in r.triggers})
        raise AddCaseError(
            f"no rule triggers on {real.trigger} (event {real.id}): a case would test nothing. "
            f"The rules trigger on {', '.join(triggers) or 'nothing'}; add the trigger to a "
            "rule first, or pick an event of one of these"
        )
    scrubbed, replaced = scrub_event(raw, metadata)
    written = {k: scrubbed[k] for k in EVENT_KEYS if scrubbed.get(k) is not None}
    event = _event(written)
    kept = _metadata_for(ruleset, event, metadata)
    plan = make_plan(ruleset, event, metadata=kept)
    truth = make_plan(ruleset, real, metadata=metadata)
    return NewCase(
        name=name or default_name(real),
        event=written,
        expect=dict(expect) if expect is not None else expect_from_plan(plan, kept),
        metadata=kept,
        plan=plan,
        replaced=frozenset(replaced),
        scrub_changed_plan=_outcome(truth) != _outcome(plan),
    )


def default_name(event: Event) -> str:
    """`ev_...: opportunity.updated of oppo_...`: unique per event, short enough for a line."""
    return f"{event.id}: {event.name} of {event.object_id}"


def expect_from_plan(plan: Plan, metadata: Metadata | None) -> dict[str, Any]:
    """What a case expects to pin `plan`: the rules that fired and the update (or none)."""
    expect: dict[str, Any] = {"fired": list(plan.fired)}
    if plan.update:
        expect["update"] = _by_name(plan.update, metadata)
    else:
        expect["no_update"] = True
    if plan.dry_run_update:
        expect["dry_run_update"] = _by_name(plan.dry_run_update, metadata)
    return expect


def parse_expect(text: str) -> dict[str, Any]:
    """`--expect`: `no-update`, or a YAML mapping with a case's expect keys."""
    if text.strip() == NO_UPDATE:
        return {"no_update": True}
    report = Report("--expect")
    root = compose(text, report)
    if isinstance(root, MappingNode):
        fields = keyed(root, EXPECT_KEYS, report)
        loaded = to_python(root, report)
        if not report.problems and isinstance(loaded, dict) and fields:
            return loaded
    reasons = "; ".join(p.message for p in report.problems)
    raise AddCaseError(
        f"--expect needs {NO_UPDATE} or a YAML mapping of {', '.join(EXPECT_KEYS)}, such as "
        f"'update: {{confidence: 100}}' or 'fired: [stamp-date-won]'"
        + (f" ({reasons})" if reasons else "")
    )


def case_yaml(case: NewCase, *, indent: int = DEFAULT_INDENT, note: str = "") -> str:
    """The case as one item of a `tests:` list, each line indented by `indent`."""
    item: dict[str, Any] = {"name": case.name, "event": case.event, "expect": case.expect}
    if case.metadata is not None:
        item["metadata"] = _metadata_yaml(case.metadata)
    text = yaml.dump(
        [item],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=None,
        allow_unicode=True,
        width=96,
    )
    lines = [f"# {note}"] if note else []
    lines += text.splitlines()
    return "".join(" " * indent + line + "\n" for line in lines)


def appended(existing: str | None, case: NewCase, *, file: str, note: str = "") -> str:
    """The file's text with the case after its last case (a new file when `existing` is
    None); AddCaseError when the name is taken or the result would not load as expected."""
    alone = f"{NEW_FILE_HEADER}tests:\n{case_yaml(case, note=note)}"
    loaded = _load(alone, file)
    if [(c.name, c.event) for c in loaded] != [(case.name, _event(case.event))]:
        raise AddCaseError(f"the case for {case.event['id']} did not load back as written")
    if existing is None:
        return alone
    if _holds_nothing(existing, file):  # empty, or comments only: the case starts the list
        return existing + ("\n" if existing and not existing.endswith("\n") else "") + alone
    before = _cases_in(existing, file)
    if case.name in before:
        raise AddCaseError(
            f"{file} already has a case named '{case.name}'"
            + (" (this event was added before)" if case.name.startswith(case.event["id"]) else "")
            + "; give another name with --name, or remove the old case first"
        )
    indent = _item_indent(existing, file)
    separator = "" if existing.endswith("\n") or not existing else "\n"
    text = f"{existing}{separator}\n{case_yaml(case, indent=indent, note=note)}"
    try:
        after = [c.name for c in load_cases(text, file)]
    except InvalidRulesError:
        after = []
    if after != [*before, case.name]:
        raise AddCaseError(
            f"cannot append to {file}: the case would not come last in its tests list. Make "
            "`tests:` the file's last key, or use --to another file"
        )
    return text


def default_test_file(rules_path: str, ruleset: RuleSet, case: NewCase) -> str:
    """Where a case goes by default: the test file beside the one rules file whose rules
    fired (or, when none fired, whose triggers cover the event), else cases.test.yaml in the
    rules folder."""
    if os.path.isfile(rules_path):
        if rules_path.endswith((".test.yaml", ".test.yml")):
            return rules_path
        return _test_file_for(rules_path)
    fired = [r for r in ruleset.rules if r.name in case.plan.fired]
    rules = fired or covering_rules(ruleset, _event(case.event))
    files = {r.position.file for r in rules}
    if len(files) == 1:
        return _test_file_for(files.pop())
    return os.path.join(rules_path, DEFAULT_CASES_FILE)


def check_case(text: str, file: str, ruleset: RuleSet, name: str) -> list[str]:
    """Load `text` as the test file and run the case named `name`: its failures, if any."""
    cases = [c for c in _load(text, file) if c.name == name]
    if len(cases) != 1:
        raise AddCaseError(f"the case '{name}' did not load back from {file}")
    return run_case(ruleset, cases[0]).failures


def _test_file_for(rules_file: str) -> str:
    stem = rules_file.rsplit(".", 1)[0]
    return f"{stem}.test.yaml"


def _event(raw: Mapping[str, Any]) -> Event:
    try:
        return event_from_dict(raw)
    except EnvelopeError as error:
        raise AddCaseError(f"Close's event is not one dealkeeper can read: {error}") from None


def _outcome(plan: Plan) -> tuple[Any, ...]:
    return (set(plan.fired), dict(plan.update), dict(plan.dry_run_update))


def _by_name(update: Mapping[str, Any], metadata: Metadata | None) -> dict[str, Any]:
    """Custom fields by name where the name leads back to the same field: readable cases."""
    names = {
        field_id: name
        for field_id, name in field_names(metadata).items()
        if metadata is not None and metadata.custom_field(name) == metadata.custom_field(field_id)
    }
    return {readable_key(key, names): value for key, value in update.items()}


def _metadata_for(ruleset: RuleSet, event: Event, metadata: Metadata | None) -> Metadata | None:
    """The part of Close's metadata the case needs (the statuses of the deal's pipeline, the
    custom fields the event and the rules name); all of it when the part would plan
    differently."""
    if metadata is None:
        return None
    pipeline = event.state.get("pipeline_id")
    statuses = tuple(
        s for s in metadata.statuses if pipeline is None or s.pipeline_id in (None, pipeline)
    )
    named = _named_fields(ruleset, event)
    fields = tuple(f for f in metadata.custom_fields if f.id in named or f.name in named)
    part = Metadata(statuses=statuses, custom_fields=fields)
    whole = make_plan(ruleset, event, metadata=metadata)
    return (
        part if _outcome(make_plan(ruleset, event, metadata=part)) == _outcome(whole) else metadata
    )


def _named_fields(ruleset: RuleSet, event: Event) -> set[str]:
    refs = {k for k in [*event.data, *event.previous_data, *event.changed_fields]}
    nested = [event.data.get("custom"), event.previous_data.get("custom")]
    refs |= {k for d in nested if isinstance(d, Mapping) for k in d}
    for rule in ruleset.rules:
        refs |= set(condition_fields(rule.condition))
        refs |= {a.field for a in rule.actions}
        refs |= {f for a in rule.actions if isinstance(a.value, DateOfExpr) for f in a.value.fields}
    return {r[len(CUSTOM_PREFIX) :] if r.startswith(CUSTOM_PREFIX) else r for r in refs}


def _metadata_yaml(metadata: Metadata) -> dict[str, Any]:
    statuses = [
        {"id": s.id, "label": s.label, "type": s.type, "pipeline_id": s.pipeline_id}
        for s in metadata.statuses
    ]
    fields = [
        {
            "id": f.id,
            "name": f.name,
            "type": f.type,
            "accepts_multiple_values": f.accepts_multiple_values,
            **({"choices": list(f.choices)} if f.choices is not None else {}),
        }
        for f in metadata.custom_fields
    ]
    return {"statuses": statuses, "custom_fields": fields}


def _load(text: str, file: str) -> list[Any]:
    try:
        return load_cases(text, file)
    except InvalidRulesError as error:
        problems = "; ".join(str(p) for p in error.problems[:3])
        raise AddCaseError(f"{file} does not load as a test file: {problems}") from None


def _holds_nothing(existing: str, file: str) -> bool:
    report = Report(file)
    return compose(existing, report) is None and not report.problems


def _cases_in(existing: str, file: str) -> list[str]:
    return [c.name for c in _load(existing, file)]


def _item_indent(existing: str, file: str) -> int:
    """The column of the file's `- ` items under `tests:`; AddCaseError when its tests are not
    a block list, to which text can be appended."""
    report = Report(file)
    root = compose(existing, report)
    tests = None
    if isinstance(root, MappingNode):
        tests = next((v for k, v in root.value if k.value == "tests"), None)
    if not isinstance(tests, SequenceNode) or tests.flow_style or not tests.value:
        raise AddCaseError(
            f"cannot append to {file}: its tests are not a block list of cases "
            "(`tests:` then `  - name: ...` lines); write them so, or use --to another file"
        )
    return int(tests.start_mark.column)  # a block list starts at its first `-`
