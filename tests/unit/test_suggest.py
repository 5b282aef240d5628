"""Suggestions for names that are almost right: keys, operators, fields, time zones."""

from __future__ import annotations

import pytest

from service.core.rules.evaluation.dates import known_timezones
from service.core.rules.suggest import closest, closest_zone, unknown


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("thne", "then"),
        ("sett", "set"),
        ("contains_any", "contains"),
        ("Status_Type", "status_type"),
    ],
)
def test_suggest_closest_finds_the_near_miss(word: str, expected: str) -> None:
    """One swapped, missing or extra letter (or the wrong case) finds the intended name."""
    candidates = ["then", "set", "contains", "not_contains", "status_type", "status"]

    assert expected == closest(word, candidates)


def test_suggest_closest_stays_quiet_on_words_that_merely_share_letters() -> None:
    """A word that only shares a few letters with every candidate gets no suggestion."""
    assert None is closest("tags", ["status", "value", "note"])


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("America/NewYork", "America/New_York"),
        ("new york", "America/New_York"),
        ("Europe/Berln", "Europe/Berlin"),
        ("utc", "UTC"),
        ("los angeles", "America/Los_Angeles"),
        ("Mumbai", None),
    ],
)
def test_suggest_closest_zone_matches_names_and_cities(word: str, expected: str | None) -> None:
    """Zones are found by whole name or by city, and unlike short names are not guessed."""
    assert expected == closest_zone(word, known_timezones())


def test_suggest_unknown_puts_the_guess_before_the_list() -> None:
    """The message names the guess first and keeps the full list in parentheses."""
    assert "unknown action 'sett'; did you mean 'set'? (expected one of set, unset)" == unknown(
        "action", "sett", ["set", "unset"], "one of set, unset"
    )


def test_suggest_unknown_without_a_guess_keeps_the_plain_message() -> None:
    """Without a close match the message is the familiar 'expected ...' one."""
    assert "unknown action 'zap'; expected one of set, unset" == unknown(
        "action", "zap", ["set", "unset"], "one of set, unset"
    )
