"""Compare two JSON values by shape: the same keys, the same types, all the way down.

Close's examples show one instance of each answer, so a shape is what can be read off one
instance: an object's keys and each value's JSON type; a list's items, each compared with
the shape of the example's items (the example's items merged, so two examples of one kind
of item may show different optional keys). Rules:

- A `null` in the example says the key may be null; its other type is unknown, so any
  value matches it. A non-null example value must be matched by the same type, or by null
  where the key is named `nullable` (Close's documents say so; one example cannot).
- An integer in the example is not matched by a float, nor a bool by a number.
- A key of the example missing from the answer is a difference unless named `optional`; a
  key of the answer missing from the example is a difference unless named `extra`.
- `maps` name objects whose keys are data (`count_by_value_period`): only their values'
  types are compared.

Paths are written `a.b[].c`: `[]` stands for any item of a list. A name in `optional`,
`extra` or `nullable` is a path, or a bare key that holds at any depth.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Allowances:
    """What may differ, and why each entry is there is said where it is made."""

    optional: Collection[str] = _EMPTY  # the answer may leave these out
    extra: Collection[str] = _EMPTY  # the answer may add these
    nullable: Collection[str] = _EMPTY  # the answer may have null where the example has a value
    maps: Collection[str] = _EMPTY  # objects whose keys are data, not names
    ignore: Collection[str] = field(default=_EMPTY)  # not compared at all (said why)


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, ints and floats apart."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def differences(example: Any, answer: Any, allow: Allowances = Allowances()) -> list[str]:
    """Every way `answer` differs in shape from `example`, one line each ([] when none)."""
    found: list[str] = []
    _compare(example, answer, "", allow, found)
    return found


def _named(path: str, names: Collection[str]) -> bool:
    key = path.rsplit(".", 1)[-1].removesuffix("[]")
    return path in names or key in names


def _compare(example: Any, answer: Any, path: str, allow: Allowances, found: list[str]) -> None:
    if _named(path, allow.ignore) or example is None:
        return
    if answer is None:
        if not _named(path, allow.nullable):
            found.append(f"{path or '<top>'}: null where Close has {json_type(example)}")
        return
    if json_type(example) != json_type(answer):
        found.append(f"{path or '<top>'}: {json_type(answer)} where Close has {json_type(example)}")
        return
    if isinstance(example, Mapping):
        _compare_objects(example, answer, path, allow, found)
    elif isinstance(example, list):
        _compare_lists(example, answer, path, allow, found)


def _compare_objects(
    example: Mapping[str, Any],
    answer: Mapping[str, Any],
    path: str,
    allow: Allowances,
    found: list[str],
) -> None:
    if _named(path, allow.maps):
        kinds = {json_type(v) for v in example.values()}
        for key, value in answer.items():
            if kinds and json_type(value) not in kinds:
                found.append(f"{path}.{key}: {json_type(value)} where Close has {sorted(kinds)}")
        return
    prefix = f"{path}." if path else ""
    for key in example.keys() - answer.keys():
        if not _named(prefix + key, allow.optional):
            found.append(f"{prefix}{key}: missing (Close sends it)")
    for key in answer.keys() - example.keys():
        if not _named(prefix + key, allow.extra):
            found.append(f"{prefix}{key}: not in Close's answer")
    for key in example.keys() & answer.keys():
        _compare(example[key], answer[key], prefix + key, allow, found)


def _compare_lists(
    example: list[Any], answer: list[Any], path: str, allow: Allowances, found: list[str]
) -> None:
    if not example:
        return  # an empty example says nothing of its items
    item = _merged(example)
    for value in answer:
        _compare(item, value, f"{path}[]", allow, found)


def _merged(items: list[Any]) -> Any:
    """One example item from several: objects merged key by key (first non-null wins)."""
    if not all(isinstance(i, Mapping) for i in items):
        return next((i for i in items if i is not None), None)
    merged: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            if merged.get(key) is None:
                merged[key] = value
    return merged
