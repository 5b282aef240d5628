"""The console's sign-in state in Redis, shared by every web process.

    dk:console:failed_logins:<address>   count of wrong passwords; expires LOGIN_WINDOW_SEC
                                         after the first
    dk:console:session_key               a random key that signs sessions when
                                         DEALKEEPER_CONSOLE_SECRET is unset; made once

Past LOGIN_ATTEMPTS in a window the console refuses that address's logins (429) until the
window ends: ten guesses per five minutes makes a 12-character password out of reach.
"""

from __future__ import annotations

import secrets

import redis

LOGIN_ATTEMPTS = 10
LOGIN_WINDOW_SEC = 300
FAILED_LOGIN_PREFIX = "dk:console:failed_logins:"
SESSION_KEY = "dk:console:session_key"


def shared_session_key(connection: redis.Redis) -> bytes:
    """A random signing key, the same for every web process: the first to ask makes it.

    Not derived from the passwords: a session cookie (one is handed to anybody who opens the
    login page) would then let its holder test password guesses offline, unthrottled."""
    connection.set(SESSION_KEY, secrets.token_hex(32), nx=True)
    found = connection.get(SESSION_KEY)
    assert found is not None  # set just above; only a flush between the two could drop it
    return found if isinstance(found, bytes) else str(found).encode()


class LoginThrottle:
    """Failed logins per client address, in Redis so every web process counts them."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        attempts: int = LOGIN_ATTEMPTS,
        window_sec: int = LOGIN_WINDOW_SEC,
    ) -> None:
        self.connection = connection
        self.attempts = attempts
        self.window_sec = window_sec

    def blocked_for(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may now."""
        key = FAILED_LOGIN_PREFIX + client
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = pipe.execute()
        if count is None or int(count) < self.attempts:
            return 0
        return max(int(ttl), 1)

    def failed(self, client: str) -> None:
        key = FAILED_LOGIN_PREFIX + client
        with self.connection.pipeline(transaction=True) as pipe:
            # The window starts at the first failure (SET NX), without EXPIRE's NX option,
            # which Redis before 7 lacks.
            pipe.set(key, 0, ex=self.window_sec, nx=True)
            pipe.incr(key)
            pipe.execute()

    def succeeded(self, client: str) -> None:
        self.connection.delete(FAILED_LOGIN_PREFIX + client)
