"""Untrusted JSON bodies: refused with a reason when they are not plain JSON or nest too deep.

Python's parser recurses once per level, so a signed body of 100,000 nested arrays would end
in RecursionError, a 500, and Close's 72 hours of retries. The depth is bounded before the
parser sees the body, in passes that each run in C over the body's brackets alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Close's envelopes nest about five levels (envelope, event, data, a custom field's list, a
# contact's email); 32 leaves room for any object Close may add without inviting abuse.
MAX_DEPTH = 32

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


class JsonRefusedError(ValueError):
    """The body is not JSON dealkeeper accepts; the message is the reason, safe to answer."""


def loads(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body, or JsonRefusedError saying why not (bad JSON, too deep, NaN)."""
    if nesting_exceeds(body, max_depth):
        raise JsonRefusedError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except JsonRefusedError:
        raise
    except RecursionError:  # only unbalanced brackets get here, and only past the bound
        raise JsonRefusedError(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise JsonRefusedError("body is not valid JSON") from None


def nesting_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than `max_depth` (strings' brackets ignored).

    Each pass removes the innermost pairs, one level; what is left after `max_depth` passes
    is deeper than that. Unbalanced brackets are left for the parser to refuse."""
    if body.count(b"[") + body.count(b"{") <= max_depth:  # most deliveries: no pass needed
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not removed:  # unbalanced: refused by the parser, unless too deep to parse at all
            return len(brackets) > max_depth
    return bool(brackets)


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have and Close never sends.
    raise JsonRefusedError(f"JSON does not allow {name}")
