"""`matches` patterns, run by RE2: time linear in the text, whatever the pattern.

Python's re backtracks: `^(a+)+$` against 29 a's and a b takes 20 s, and each more a doubles
it. Rules are written by ops, but the text they test is typed by anyone in Close, so every
`matches` pattern is compiled, checked and searched here, with RE2 (google-re2), which never
backtracks. The loader, the interpreter and the compiled predicates all come through
compile_pattern, so they cannot disagree.

RE2's syntax is Perl's and re's, less what only backtracking can do: backreferences (`\\1`,
`(?P=name)`) and lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`) are refused, with a sentence
saying what to write instead. Where the two differ on what they accept, re's meaning is
kept: `$` also matches before a final newline. RE2's `\\d`, `\\w`, `\\s` and `\\b` are ASCII
only (docs/rules.md says what to write for other scripts).
"""

from __future__ import annotations

import functools
from typing import Any

import re2

# Each compiled pattern is kept: the interpreter asks for its pattern on every evaluation.
_CACHED_PATTERNS = 1024
_BACKREFERENCE = "backreference"
_LOOKAHEAD = "lookahead"
_LOOKBEHIND = "lookbehind"
# RE2's complaint -> what the pattern uses, when that is something only backtracking can do.
_UNSUPPORTED = {
    "invalid perl operator: (?=": (_LOOKAHEAD, "(?="),
    "invalid perl operator: (?!": (_LOOKAHEAD, "(?!"),
    "invalid perl operator: (?<=": (_LOOKBEHIND, "(?<="),
    "invalid perl operator: (?<!": (_LOOKBEHIND, "(?<!"),
    "invalid escape sequence: \\k": (_BACKREFERENCE, "\\k"),
    **{f"invalid escape sequence: \\{n}": (_BACKREFERENCE, f"\\{n}") for n in range(1, 10)},
}
_INSTEAD = {
    _BACKREFERENCE: "write out the text the group would repeat instead",
    _LOOKAHEAD: "test each part with a condition of its own (inside not: for a part that "
    "must not match)",
}
_INSTEAD[_LOOKBEHIND] = _INSTEAD[_LOOKAHEAD]
_MATCHER = "dealkeeper's linear-time matcher (RE2)"


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says what is wrong and what to write instead."""


class Pattern:
    """A compiled `matches` pattern."""

    __slots__ = ("_before_final_newline", "_search", "text")

    def __init__(self, text: str, compiled: Any) -> None:
        self.text = text
        self._search = compiled.search
        # re's $ also matches before a final newline; RE2's only at the very end.
        self._before_final_newline = "$" in text

    def search(self, text: str) -> bool:
        """True when the pattern is found anywhere in `text` (as re.search finds it)."""
        # Encoded here rather than by the binding: a lone surrogate (valid JSON) passes.
        data = text.encode("utf-8", "surrogatepass")
        if self._search(data) is not None:
            return True
        return (
            self._before_final_newline
            and data.endswith(b"\n")
            and self._search(data[:-1]) is not None
        )

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"


@functools.lru_cache(maxsize=_CACHED_PATTERNS)
def compile_pattern(text: str) -> Pattern:
    """The pattern, compiled; PatternError (explained) when RE2 cannot run it."""
    options = re2.Options()
    options.log_errors = False  # refusals are reported by the caller, not on stderr
    options.never_capture = True  # rules ask whether it is found, never what a group held
    try:
        compiled = re2.compile(text, options)
    except re2.error as e:
        raise PatternError(_explain(text, _reason(e))) from None
    return Pattern(text, compiled)


def _reason(error: Exception) -> str:
    detail = error.args[0] if error.args else ""
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def _explain(text: str, reason: str) -> str:
    kind, found = _UNSUPPORTED.get(reason, ("", ""))
    if reason == "invalid perl operator: (?P" and "(?P=" in text:
        kind, found = _BACKREFERENCE, "(?P="  # RE2 names only the (?P of (?P=name)
    if kind:
        return (
            f"pattern '{text}' uses a {kind} ({found}), which {_MATCHER} does not support; "
            f"{_INSTEAD[kind]}"
        )
    if reason == "invalid escape sequence: \\Z":
        return (
            f"pattern '{text}' uses \\Z, which {_MATCHER} spells \\z; "
            "write \\z for the end of the text"
        )
    return f"pattern '{text}' is not a valid regular expression (RE2 syntax): {reason}"
