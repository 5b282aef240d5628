"""Who may see the console and who may act: passwords, sessions, CSRF, the login throttle.

Two roles, chosen by the password given at the login form: DEALKEEPER_CONSOLE_PASSWORD
reads, DEALKEEPER_CONSOLE_ADMIN_PASSWORD may also act (retry, purge, dry-run a sweep). The
session is Flask's signed cookie, signed with DEALKEEPER_CONSOLE_SECRET, or else with a
random key kept in Redis (service/adapters/logins.py), so every web process signs alike. It
holds a digest of the passwords (`Passwords.version`): changing a password ends every
session. Each session carries a CSRF token that every POST must echo.

Failed logins are counted in Redis per client address (service/adapters/logins.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from service.config.settings import Settings

READ = "read"
ADMIN = "admin"
SESSION_HOURS = 12


@dataclass(frozen=True)
class Passwords:
    """The console's passwords, never shown, compared in constant time."""

    read: str | None
    admin: str | None

    @classmethod
    def of(cls, settings: Settings) -> Passwords:
        return cls(read=settings.console_password, admin=settings.console_admin_password)

    def role_for(self, given: str) -> str | None:
        """The role a password opens, or None. Both are compared, whichever matches, so the
        time taken does not tell which password was close."""
        given_bytes = given.encode()
        is_admin = _same(given_bytes, self.admin)
        is_read = _same(given_bytes, self.read)
        if is_admin:
            return ADMIN
        return READ if is_read else None

    def version(self) -> str:
        """A short digest of the passwords, kept in the session: a changed password ends it."""
        joined = f"{self.read or ''}\0{self.admin or ''}".encode()
        return hashlib.sha256(b"dealkeeper-console-passwords\0" + joined).hexdigest()[:16]


def _same(given: bytes, password: str | None) -> bool:
    if password is None:
        hmac.compare_digest(given, given)
        return False
    return hmac.compare_digest(given, password.encode())


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
