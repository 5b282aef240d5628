"""Suggestions ("did you mean ...?") for names that are almost right: keys, operators, zones.

A close match turns `unknown key 'thne'` into `unknown key 'thne'; did you mean 'then'?`,
which is usually all an ops person needs to fix a rule file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# A little above difflib's 0.6: low enough for one swapped or missing letter, high enough
# to stay quiet on words that merely share a few letters ("tags" and "status").
SUGGESTION_CUTOFF = 0.7
ZONE_CUTOFF = 0.8


def closest(
    word: str, candidates: Iterable[str], *, cutoff: float = SUGGESTION_CUTOFF
) -> str | None:
    """The candidate most like `word` (case folded), or None when none is close."""
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    folded = word.casefold()
    if folded in by_folded and by_folded[folded] != word:
        return by_folded[folded]  # right word, wrong case: always worth saying
    found = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=cutoff)
    return by_folded[found[0]] if found else None


def closest_zone(word: str, zones: Iterable[str]) -> str | None:
    """The IANA zone most like `word`, by whole name or by city: `new york` -> America/New_York."""
    zones = list(zones)
    guess = closest(word, zones, cutoff=ZONE_CUTOFF)
    if guess is not None:
        return guess
    cities = {zone.rsplit("/", 1)[-1].replace("_", " "): zone for zone in zones}
    # Stricter: short city names are alike by chance (Mumbai and Cuba share half their letters).
    city = closest(word.replace("_", " "), cities, cutoff=ZONE_CUTOFF)
    return None if city is None else cities[city]


def unknown(
    what: str, word: str, candidates: Iterable[str], expected: str, *, guess: str | None = None
) -> str:
    """`unknown {what} '{word}'; did you mean 'x'? (expected ...)`, or without the guess."""
    guess = guess or closest(word, candidates)
    if guess is None:
        return f"unknown {what} '{word}'; expected {expected}"
    return f"unknown {what} '{word}'; did you mean '{guess}'? (expected {expected})"
