"""`matches` patterns: time linear in the text whatever the pattern, re.search's meaning kept,
and every pattern RE2 refuses explained."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.core.rules.evaluation.patterns import PatternError, compile_pattern
from tests.unit import hostile

ROOT = Path(__file__).resolve().parents[2]
# Generous on purpose: on a busy machine starting Python and importing the engine can take
# a few seconds, and RE2 searches the text in milliseconds. A backtracking matcher would
# need longer than the age of the universe, so only a matcher that backtracks fails this.
DEADLINE_SEC = 10


@pytest.mark.parametrize("path", sorted(hostile.PATHS))
def test_patterns_hostile_pattern_returns_at_once_on_every_path(path: str) -> None:
    """`^(a+)+$` on 100,000 characters ending in b, which backtracks for ever, returns at
    once on every path that evaluates `matches`."""
    command = [sys.executable, "-m", "tests.unit.hostile", path]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_SEC, check=False
        )
    except subprocess.TimeoutExpired:
        what = f"{hostile.PATTERN} on {len(hostile.TEXT)} characters"
        pytest.fail(f"{path}: {what} ran past {DEADLINE_SEC} s")

    assert (0, "") == (done.returncode, done.stderr)


PATTERNS = (
    "^Prop",
    "(?i)smb",
    r"\d{4}-05",
    "won$",
    "(?m)^b$",
    r"\bcontract signed\b",
    "a.c",
    "(?s)a.c",
    "^$",
    "",
    "colou?r",
    "[A-Z]{3}",
    r"\$\d+",
    "x|y",
    "(?i)ÉTÉ",
    "a{2,3}",
    r"^\s*$",
    r"(?P<first>a)b",
    r"\n$",
)
TEXTS = (
    "Proposal sent",
    "Sent proposal",
    "SMB",
    "an smb deal",
    "2026-05-04",
    "won",
    "won\n",
    "won\n\n",
    "won\nlost",
    "contract signed today",
    "a\nc",
    "abc",
    "a\nb\nc",
    "",
    "\n",
    "colour",
    "ABC",
    "$100",
    "été",
    "aa",
    "  \t",
    "ab",
    "x\ud800y",  # a lone surrogate: Close's JSON may carry one
)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_find_what_re_search_finds(pattern: str) -> None:
    """For the syntax rules use, a pattern is found exactly where re.search finds it: anywhere
    in the text, with $ also before a final newline."""
    expected = [bool(re.search(pattern, text)) for text in TEXTS]

    assert expected == [compile_pattern(pattern).search(text) for text in TEXTS]


REFUSED = [
    (
        r"(a)\1",
        r"pattern '(a)\1' uses a backreference (\1), which dealkeeper's linear-time matcher "
        "(RE2) does not support; write out the text the group would repeat instead",
    ),
    (
        r"(?P<q>['\"]).*(?P=q)",
        r"""pattern '(?P<q>['\"]).*(?P=q)' uses a backreference ((?P=), which dealkeeper's """
        "linear-time matcher (RE2) does not support; write out the text the group would "
        "repeat instead",
    ),
    (
        "deal(?!s)",
        "pattern 'deal(?!s)' uses a lookahead ((?!), which dealkeeper's linear-time matcher "
        "(RE2) does not support; test each part with a condition of its own (inside not: for "
        "a part that must not match)",
    ),
    (
        "(?=.*won)(?=.*big)",
        "pattern '(?=.*won)(?=.*big)' uses a lookahead ((?=), which dealkeeper's linear-time "
        "matcher (RE2) does not support; test each part with a condition of its own (inside "
        "not: for a part that must not match)",
    ),
    (
        "(?<=Mr)s",
        "pattern '(?<=Mr)s' uses a lookbehind ((?<=), which dealkeeper's linear-time matcher "
        "(RE2) does not support; test each part with a condition of its own (inside not: for "
        "a part that must not match)",
    ),
    (
        "(?<!no )deal",
        "pattern '(?<!no )deal' uses a lookbehind ((?<!), which dealkeeper's linear-time "
        "matcher (RE2) does not support; test each part with a condition of its own (inside "
        "not: for a part that must not match)",
    ),
    (
        r"signed\Z",
        r"pattern 'signed\Z' uses \Z, which dealkeeper's linear-time matcher (RE2) spells "
        r"\z; write \z for the end of the text",
    ),
    ("a(", "pattern 'a(' is not a valid regular expression (RE2 syntax): missing ): a("),
    (
        "x{1001}",
        "pattern 'x{1001}' is not a valid regular expression (RE2 syntax): invalid repetition "
        "size: {1001}",
    ),
]


@pytest.mark.parametrize(("pattern", "expected"), REFUSED)
def test_patterns_refused_pattern_says_why_and_what_to_do(pattern: str, expected: str) -> None:
    """Backreferences and lookaround, which need backtracking, are named as such with what to
    write instead; any other refusal carries RE2's own reason."""
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)

    assert expected == str(caught.value)


def test_patterns_refusal_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """RE2 logs refused patterns to stderr by default; the explanation is the only report."""
    with pytest.raises(PatternError):
        compile_pattern("a(")

    assert ("", "") == capfd.readouterr()
