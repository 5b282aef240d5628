"""Variations of Close's documented shapes (tests/property/documented.py), for hypothesis.

Each variation is a list of edits applied to the documented delivery: a key set to another
value (null, unicode, huge numbers and strings, deep-but-legal nesting, another action,
object type, status type or timestamp form), a key left out, or a key Close may add one day.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from tests.property import documented

Path = tuple[str, ...]

# jsonbody.MAX_DEPTH is 32 and `data` sits three levels down: nest up to the limit and a
# little past it (refused with 400, which is fine too).
MAX_NESTING = 31

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
# Built from a size, not drawn character by character: cheap however long.
_HUGE = st.one_of(
    st.builds(lambda digits: int("9" * digits), st.integers(19, 4300)),  # Python prints no more
    st.builds(lambda c, n: c * n, st.characters(), st.integers(1000, 200_000)),
    st.sampled_from([1e308, -1e308, 5e-324, 2**53 + 1]),
)
_NESTED = st.builds(
    lambda leaf, depth, as_list: _nest(leaf, depth, as_list=as_list),
    _SCALARS,
    st.integers(1, MAX_NESTING),
    st.booleans(),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)
ANY_VALUE = st.one_of(JSON_VALUES, _HUGE, _NESTED)


def _nest(leaf: Any, depth: int, *, as_list: bool) -> Any:
    for _ in range(depth):
        leaf = [leaf] if as_list else {"k": leaf}
    return leaf


def timestamps() -> st.SearchStrategy[str]:
    """ISO 8601 as Close writes it, and as it might: with or without fractions, `Z` or an
    offset, at the ends of the calendar."""
    offsets = st.one_of(
        st.just(""),
        st.just("Z"),
        st.builds(_offset, st.integers(-14 * 60, 14 * 60)),
    )
    # Naive on purpose: the offset is written after them, and takes the ends past the calendar.
    first, last = datetime.min, datetime.max  # noqa: DTZ901
    moments = st.sampled_from([first, last]) | st.datetimes(min_value=first, max_value=last)
    fractions = st.sampled_from(["seconds", "milliseconds", "microseconds"])
    return st.builds(
        lambda moment, spec, offset: moment.isoformat(timespec=spec) + offset,
        moments,
        fractions,
        offsets,
    ) | st.sampled_from(documented.DOCUMENTED_TIMESTAMPS)


def _offset(minutes: int) -> str:
    """`+05:30`, `-14:00`: an offset as ISO 8601 writes it."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


# The values that name something Close may add to: documented ones, and any text.
_NAMED = {
    ("event", "action"): st.sampled_from(documented.DOCUMENTED_ACTIONS) | st.text(max_size=20),
    ("event", "object_type"): st.sampled_from(documented.DOCUMENTED_OBJECT_TYPES)
    | st.text(max_size=20),
    ("event", "data", "status_type"): st.sampled_from(
        (*documented.DOCUMENTED_STATUS_TYPES, "paused", "archived")
    )
    | st.text(max_size=20),
    ("event", "previous_data", "status_type"): st.sampled_from(
        (*documented.DOCUMENTED_STATUS_TYPES, "paused")
    ),
}
_TIMES = (
    ("event", "date_created"),
    ("event", "date_updated"),
    ("event", "data", "date_updated"),
    ("event", "data", "date_won"),
)


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every key path of the nested objects in `value`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from paths(inner, (*prefix, key))


def containers(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path that holds an object (the root is `()`)."""
    if isinstance(value, dict):
        yield prefix
        for key, inner in value.items():
            yield from containers(inner, (*prefix, key))


@st.composite
def edits(draw: st.DrawFn, body: dict[str, Any]) -> tuple[Any, ...]:
    """One edit of `body`: ("set", path, value), ("drop", path) or ("add", path, key, value)."""
    kind = draw(st.sampled_from(["set", "set", "named", "time", "drop", "add"]))
    if kind == "named":
        path = draw(st.sampled_from(sorted(_NAMED)))
        return ("set", path, draw(_NAMED[path] | st.none()))
    if kind == "time":
        return ("set", draw(st.sampled_from(_TIMES)), draw(timestamps() | st.none()))
    if kind == "add":
        where = draw(st.sampled_from(list(containers(body))))
        return ("add", where, draw(st.text(min_size=1, max_size=20)), draw(ANY_VALUE))
    keys = list(paths(body))
    if not keys:  # every key was dropped: add one back
        return ("add", (), draw(st.text(min_size=1, max_size=20)), draw(ANY_VALUE))
    path = draw(st.sampled_from(keys))
    if kind == "drop":
        return ("drop", path)
    return ("set", path, draw(ANY_VALUE))


@st.composite
def deliveries(draw: st.DrawFn, base: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """A documented delivery with up to five edits, and the edits (for the failure report)."""
    body = copy.deepcopy(base)
    made = []
    for _ in range(draw(st.integers(0, 5))):
        edit = draw(edits(body))
        apply_edit(body, edit)
        made.append(_shown(edit))
    return body, made


def apply_edit(body: dict[str, Any], edit: tuple[Any, ...]) -> None:
    """Make one edit in place; an edit whose parent is no longer an object is skipped."""
    kind, path = edit[0], edit[1]
    parent = _at(body, path if kind == "add" else path[:-1])
    if not isinstance(parent, dict):
        return
    if kind == "add":
        parent[edit[2]] = edit[3]
    elif kind == "drop":
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = edit[2]


def _at(body: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _shown(edit: tuple[Any, ...]) -> Any:
    """The edit as a failure report shows it: huge values by their type and size."""
    return tuple(_short(part) for part in edit)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 else f"<{type(value).__name__} of {len(text)} chars>"
