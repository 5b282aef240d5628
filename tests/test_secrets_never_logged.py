"""No credential the suite used ever reached a log line (runs last; see tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import EVERYTHING_LOGGED, SUITE_SECRETS


def test_secrets_never_logged_anywhere_in_the_suite() -> None:
    """Search the raw text of every log record of the session for every test credential."""
    leaks = [
        text[:300]
        for text in EVERYTHING_LOGGED.texts
        if any(secret in text for secret in SUITE_SECRETS)
    ]

    assert [] == leaks
    assert EVERYTHING_LOGGED.texts, "nothing was logged: the search would prove nothing"
