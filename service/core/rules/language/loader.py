"""Rule files -> RuleSet, all or nothing.

`load_rules` and `load_rule_sources` take text; `load_rules_path` is the only function of
the rule engine that reads files. Every mistake becomes a `Problem` with the file, 1-based
line and column, and a message saying what must hold and what was found; a set of sources
with any mistake raises `InvalidRulesError` with all of them and yields no rules at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from service.config.errors import InvalidRulesError, Problem
from service.core.rules import spec
from service.core.rules.evaluation.dates import is_known_timezone, known_timezones
from service.core.rules.evaluation.program import compiled_rules
from service.core.rules.language.checks import parse_report
from service.core.rules.language.clauses import parse_actions, parse_conditions
from service.core.rules.language.find import find_conditions
from service.core.rules.language.sweeps import (
    check_event_rule,
    check_sweep_rule,
    is_sweep_rule,
    parse_sweep,
    sweep_trigger,
)
from service.core.rules.language.yamlnodes import (
    STR_TAG,
    Report,
    compose,
    describe,
    keyed,
    position,
    scalar_value,
)
from service.core.rules.model import AllOf, Position, ReportCheck, Rule, RuleSet, Sweep
from service.core.rules.suggest import closest_zone, unknown

RULE_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")

_Fields = dict[str, tuple[Node, Node]]


def load_rules(text: str, file: str) -> RuleSet:
    """The rules of one file; raises InvalidRulesError listing every mistake."""
    return load_rule_sources([(file, text)])


def load_rule_sources(sources: Sequence[tuple[str, str]]) -> RuleSet:
    """The rules of several (file, text) pairs, in the given order, names unique across all."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    checks: list[ReportCheck] = []
    for file, text in sources:
        report = Report(file)
        rules.extend(parse_rule_file(text, report, checks=checks))
        problems.extend(report.problems)
    problems.extend(_duplicate_names(rules, checks))
    if problems:
        raise InvalidRulesError(problems)
    ruleset = RuleSet(
        rules=tuple(rules),
        files=tuple(f for f, _ in sources),
        digest=digest_sources(sources),
        checks=tuple(checks),
    )
    compiled_rules(ruleset)  # now, so that no event waits for it
    return ruleset


def load_rules_path(path: str | os.PathLike[str]) -> RuleSet:
    """The rules of a file, or of a folder's top-level rule files read in name order."""
    return load_rule_sources(read_sources(rule_file_names(path)))


def rule_file_names(path: str | os.PathLike[str]) -> list[str]:
    """The rule files `path` stands for, named as the path was given joined with file names."""
    given = Path(path)
    if given.is_dir():
        return [
            os.path.join(os.fspath(path), p.name)
            for p in sorted(given.iterdir())
            if is_rule_file(p)
        ]
    if given.is_file():
        return [os.fspath(path)]
    expected = "expected a rules file or a folder of *.yaml rule files"
    raise InvalidRulesError([Problem(os.fspath(path), 1, 1, f"no such file or folder; {expected}")])


def read_sources(names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, text) of each file; unreadable files become problems, all reported at once."""
    sources, problems = [], []
    for name in names:
        try:
            sources.append((name, Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(name, 1, 1, f"cannot read the file: {e}"))
    if problems:
        raise InvalidRulesError(problems)
    return sources


def is_rule_file(path: Path) -> bool:
    """A *.yaml / *.yml file that is not a rule test."""
    return path.is_file() and path.name.endswith(RULE_SUFFIXES) and not is_test_file(path)


def is_test_file(path: Path) -> bool:
    """A *.test.yaml / *.test.yml rule test file."""
    return path.name.endswith(TEST_SUFFIXES)


def digest_sources(sources: Sequence[tuple[str, str]]) -> str:
    """First 12 hex digits of sha256 over the (file name, text) pairs."""
    hashed = hashlib.sha256()
    for file, text in sources:
        hashed.update(file.encode() + b"\0" + text.encode() + b"\0")
    return hashed.hexdigest()[:12]


def parse_rule_file(
    text: str, report: Report, *, checks: list[ReportCheck] | None = None
) -> list[Rule]:
    """The rules of one file's text; its report checks go to `checks`, mistakes to
    `report`."""
    root = compose(text, report)
    keys = ", ".join(spec.TOP_LEVEL_KEYS)
    if root is None:
        if not report.problems:
            report.add_at(
                1, 1, f"a rules file must be a mapping with keys {keys}; found an empty file"
            )
        return []
    if not isinstance(root, MappingNode):
        report.add(root, f"a rules file must be a mapping with keys {keys}; found {describe(root)}")
        return []
    fields = keyed(root, list(spec.TOP_LEVEL_KEYS), report)
    timezone = _timezone(fields.get("timezone"), spec.DEFAULT_TIMEZONE, report)
    if "report" in fields:
        found = parse_report(fields["report"][1], timezone, report, text=_text, zone=_timezone)
        if checks is not None:
            checks.extend(found)
    if "rules" not in fields:
        if "report" not in fields:
            needs = "a rules file needs the key 'rules' (a list of rules) or 'report'"
            report.add(root, f"{needs}; it is missing")
        return []
    rules_node = fields["rules"][1]
    if not isinstance(rules_node, SequenceNode):
        report.add(rules_node, f"rules must be a list of rules; found {describe(rules_node)}")
        return []
    parsed = (_rule(node, timezone, report) for node in rules_node.value)
    return [rule for rule in parsed if rule is not None]


def _rule(node: Node, file_timezone: str, report: Report) -> Rule | None:
    if not isinstance(node, MappingNode):
        report.add(node, f"a rule must be a mapping with name, if and then; found {describe(node)}")
        return None
    fields = keyed(node, list(spec.RULE_KEYS), report)
    for key in ("name", "then"):
        if key not in fields:
            report.add(node, f"a rule needs the key '{key}'; it is missing")
    where = position(node, report.file)
    name = _text(fields.get("name"), "name", report) or ""
    sweeping = is_sweep_rule(fields)
    sweep = parse_sweep(fields, report) if sweeping else None
    rule = Rule(
        name=name,
        triggers=(sweep_trigger(name),) if sweeping else _triggers(fields, report),
        condition=_if(fields.get("if"), where, report, sweep=sweep),
        actions=parse_actions(fields["then"][1], report) if "then" in fields else (),
        timezone=_timezone(fields.get("timezone"), file_timezone, report),
        position=where,
        description=_text(fields.get("description"), "description", report, empty_ok=True) or "",
        enabled=_flag(fields, "enabled", report),
        dry_run=_flag(fields, "dry_run", report),
        sweep=sweep,
    )
    if sweeping:
        check_sweep_rule(rule, fields, report)
    else:
        check_event_rule(rule, report)
    return rule if rule.name else None


def _if(
    field: tuple[Node, Node] | None, where: Position, report: Report, *, sweep: Sweep | None
) -> AllOf:
    """The rule's conditions; a sweep rule's find comes first, checked on every deal."""
    found = AllOf((), where) if field is None else parse_conditions(field[1], report)
    if sweep is None:
        return found
    return AllOf((*find_conditions(sweep.filters), *found.conditions), found.position)


def _text(
    field: tuple[Node, Node] | None, key: str, report: Report, *, empty_ok: bool = False
) -> str | None:
    if field is None:
        return None
    node = field[1]
    if not (
        isinstance(node, ScalarNode) and node.tag == STR_TAG and (empty_ok or node.value.strip())
    ):
        report.add(
            node,
            f"{key} must be {'text' if empty_ok else 'non-empty text'}; found {describe(node)}",
        )
        return None
    return str(node.value)


def _flag(fields: _Fields, key: str, report: Report) -> bool:
    default = bool(spec.RULE_KEYS[key].default)
    if key not in fields:
        return default
    node = fields[key][1]
    value = scalar_value(node, report) if isinstance(node, ScalarNode) else None
    if not isinstance(value, bool):
        report.add(node, f"{key} needs true or false; found {describe(node)}")
        return default
    return value


def _timezone(field: tuple[Node, Node] | None, default: str, report: Report) -> str:
    if field is None:
        return default
    name = _text(field, "timezone", report)
    if name is None:
        return default
    if not is_known_timezone(name):
        hint = "an IANA name such as America/New_York or UTC"
        guess = closest_zone(name, known_timezones())
        report.add(field[1], unknown("timezone", name, (), hint, guess=guess))
        return default
    return name


def _triggers(fields: _Fields, report: Report) -> tuple[str, ...]:
    if "trigger" in fields and "on" in fields:
        report.add(fields["on"][0], "use either trigger or on, not both")
    field = fields.get("trigger") or fields.get("on")
    if field is None:
        return spec.DEFAULT_TRIGGERS
    node = field[1]
    items = node.value if isinstance(node, SequenceNode) and node.value else [node]
    names = [_trigger(item, report) for item in items]
    return tuple(name for name in names if name is not None)


def _trigger(node: Node, report: Report) -> str | None:
    expected = ", ".join(spec.TRIGGERS)
    if not (isinstance(node, ScalarNode) and node.tag == STR_TAG):
        report.add(
            node, f"a trigger must be an event name, one of {expected}; found {describe(node)}"
        )
        return None
    if node.value not in spec.TRIGGERS:
        guess = spec.TRIGGER_SYNONYMS.get(str(node.value).rsplit(".", 1)[-1].casefold())
        report.add(
            node, unknown("trigger", node.value, spec.TRIGGERS, f"one of {expected}", guess=guess)
        )
        return None
    return str(node.value)


def _duplicate_names(rules: list[Rule], checks: list[ReportCheck]) -> list[Problem]:
    """Names are unique across rules and report checks: the report lists both by name."""
    first: dict[str, Position] = {}
    problems = []
    named = [*((r, "rule") for r in rules), *((c.rule, "report check") for c in checks)]
    for rule, kind in named:
        seen = first.setdefault(rule.name, rule.position)
        if seen is not rule.position:
            where = rule.position
            message = (
                f"duplicate {kind} name '{rule.name}'; first defined at {seen.file}:{seen.line}"
            )
            problems.append(Problem(where.file, where.line, where.column, message))
    return problems
