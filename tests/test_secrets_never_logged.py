"""No credential the suite used ever reached a log line (runs last; see tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import EVERYTHING_LOGGED, SUITE_SECRETS
from tests.secrets import leaked


def test_secrets_never_logged_anywhere_in_the_suite() -> None:
    """Search the raw text of every log record of the session (message, fields, traceback)
    for every test credential, in every form it can take (hex, bytes, base64, Basic)."""
    leaks = [text[:300] for text in EVERYTHING_LOGGED.texts if leaked(text, SUITE_SECRETS)]

    assert [] == leaks
    assert EVERYTHING_LOGGED.texts, "nothing was logged: the search would prove nothing"
