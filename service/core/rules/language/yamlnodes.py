"""YAML 1.2 nodes with positions, and a collector for the problems found in them.

Rule files and rule tests are read with `yaml.compose()` so every node keeps its line and
column. Scalars are resolved as YAML 1.2's core schema does: only true/false are booleans,
so a choice named "No" or a key named `on` stays text. Tags beyond that schema
(`!!python/object/apply:...`, `!!set`, `!local`) and aliases inside the node they name (a
loop) are refused as the document is read, each where it is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from service.config.errors import Problem
from service.core.rules.model import Position
from service.core.rules.suggest import unknown

STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"
_CORE_TAGS = frozenset({STR_TAG, INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG, SEQ_TAG, MAP_TAG})
_STANDARD_TAG_PREFIX = "tag:yaml.org,2002:"
_LOOP = (
    "this node holds an alias of itself (*), a loop no rule can be read from; an alias may "
    "only repeat a node outside it"
)

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_NULL = re.compile(r"~|null|Null|NULL|")


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema resolvers; the global SafeLoader is untouched."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012 PyYAML's own class attribute


for _tag, _pattern, _first in (
    (BOOL_TAG, _BOOL, "tTfF"),
    (INT_TAG, _INT, "-+0123456789"),
    (FLOAT_TAG, _FLOAT, "-+0123456789."),
    (NULL_TAG, _NULL, "~nN"),
):
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern.pattern})$"), list(_first))
Yaml12Loader.add_implicit_resolver(NULL_TAG, re.compile("^$"), [""])


@dataclass
class Report:
    """The problems found in one file, in the order found."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, node: Node, message: str) -> None:
        """Record a problem at `node`'s position."""
        where = position(node, self.file)
        self.problems.append(Problem(self.file, where.line, where.column, message))

    def add_at(self, line: int, column: int, message: str) -> None:
        """Record a problem at a 1-based line and column."""
        self.problems.append(Problem(self.file, line, column, message))


def compose(text: str, report: Report) -> Node | None:
    """The document's root node, or None for an empty file, a syntax error, a tag or an alias
    loop (each reported)."""
    try:
        root = yaml.compose(text, Loader=Yaml12Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        detail = f"{e.context}, {e.problem}" if e.context else str(e.problem)
        report.add_at(line, column, f"invalid YAML: {detail}")
        return None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        code = e.character if isinstance(e.character, int) else ord(e.character)
        report.add_at(line, column, f"invalid YAML: character #x{code:04x}: {e.reason}")
        return None
    found = len(report.problems)
    if root is not None:
        _check_tags_and_loops(root, report, seen=set(), path=set())
    return root if len(report.problems) == found else None


def _check_tags_and_loops(node: Node, report: Report, *, seen: set[int], path: set[int]) -> None:
    """Report every tag outside the core schema and every alias inside the node it names.

    Nodes an alias repeats are the same object, so each is checked once (`seen`), however
    often aliases repeat it; `path` holds the nodes around this one, where a loop shows."""
    if id(node) in path:
        report.add(node, _LOOP)
        return
    if id(node) in seen:
        return
    seen.add(id(node))
    if node.tag not in _CORE_TAGS:
        report.add(node, tag_problem(node.tag))
    children: list[Node] = []
    if isinstance(node, SequenceNode):
        children = node.value
    elif isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    path.add(id(node))
    for child in children:
        _check_tags_and_loops(child, report, seen=seen, path=path)
    path.discard(id(node))


def tag_problem(tag: str) -> str:
    """The message for a YAML tag rules cannot hold, in the short form it was written."""
    if tag.startswith(_STANDARD_TAG_PREFIX):
        tag = "!!" + tag.removeprefix(_STANDARD_TAG_PREFIX)
    return f"YAML tags are not allowed; found {tag} (write the value without it)"


def position(node: Node, file: str) -> Position:
    """Where `node` starts, 1-based."""
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def mapping_items(node: MappingNode, report: Report) -> list[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping; duplicate or non-text keys are reported."""
    items: list[tuple[str, Node, Node]] = []
    seen: set[str] = set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            report.add(key_node, f"keys must be text; found {describe(key_node)}")
            continue
        key = str(key_node.value)
        if key in seen:
            report.add(key_node, f"duplicate key '{key}' in this mapping")
            continue
        seen.add(key)
        items.append((key, key_node, value_node))
    return items


def check_keys(
    items: list[tuple[str, Node, Node]], allowed: list[str], report: Report
) -> list[tuple[str, Node, Node]]:
    """The items whose key is allowed; every other key is reported with the allowed ones."""
    known = []
    for key, key_node, value_node in items:
        if key in allowed:
            known.append((key, key_node, value_node))
        else:
            report.add(key_node, unknown("key", key, allowed, f"one of {', '.join(allowed)}"))
    return known


def keyed(node: MappingNode, allowed: list[str], report: Report) -> dict[str, tuple[Node, Node]]:
    """key -> (key node, value node) of the allowed keys; unknown keys are reported."""
    items = check_keys(mapping_items(node, report), allowed, report)
    return {key: (key_node, value_node) for key, key_node, value_node in items}


def to_python(node: Node, report: Report) -> Any:
    """Plain Python data of a node (dict, list, str, int, float, bool, None)."""
    if isinstance(node, MappingNode):
        return {k: to_python(v, report) for k, _, v in mapping_items(node, report)}
    if isinstance(node, SequenceNode):
        return [to_python(item, report) for item in node.value]
    return scalar_value(node, report)


def scalar_value(node: Node, report: Report) -> Any:
    """The value of a scalar node under the YAML 1.2 core schema."""
    text = str(node.value)
    converters: dict[str, Callable[[str], Any]] = {
        STR_TAG: str,
        INT_TAG: _to_int,
        FLOAT_TAG: _to_float,
        BOOL_TAG: lambda t: t.lower() == "true",
        NULL_TAG: lambda t: None,
    }
    convert = converters.get(node.tag)
    if convert is None:
        report.add(node, tag_problem(node.tag))
        return None
    try:
        return convert(text)
    except ValueError:
        report.add(node, f"'{text}' is not a valid {node.tag.rsplit(':', 1)[-1]}")
        return None


def describe(node: Node) -> str:
    """What a node holds, for 'found ...' in messages."""
    if isinstance(node, MappingNode):
        return "an empty mapping" if not node.value else "a mapping"
    if isinstance(node, SequenceNode):
        return "an empty list" if not node.value else "a list"
    text = str(node.value)
    if node.tag == STR_TAG:
        return f"'{text}'"
    if node.tag == NULL_TAG:
        return "null"
    return text


def _to_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _to_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)
