"""A bound on badly signed webhooks, per web process.

Every refused delivery costs an HMAC over up to 1 MiB, a log line and a counter. A client
that keeps sending bad signatures gets 429 without any of that for the rest of the minute,
and so does everyone once a process has refused too many in a minute (Close retries a 429
for up to 72 hours, so a legitimate delivery caught in that is delayed, not lost). Kept in
memory: refusing work must not cost a Redis write. Pure apart from the injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_PER_CLIENT_PER_MIN = 60
DEFAULT_TOTAL_PER_MIN = 1200
WINDOW_SEC = 60.0


class RejectionBudget:
    """How many refused webhooks a client, and everyone together, may cost per window."""

    def __init__(
        self,
        *,
        per_client: int = DEFAULT_PER_CLIENT_PER_MIN,
        total: int = DEFAULT_TOTAL_PER_MIN,
        window_sec: float = WINDOW_SEC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.total = total
        self.window_sec = window_sec
        self.clock = clock
        self._window_start = clock()
        self._by_client: dict[str, int] = {}
        self._total = 0

    def exhausted(self, client: str) -> bool:
        """True when this client (or everyone) used up the budget of this window."""
        self._roll()
        return self._total >= self.total or self._by_client.get(client, 0) >= self.per_client

    def spend(self, client: str) -> None:
        """Count one refused delivery."""
        self._roll()
        self._total += 1
        # Bounded memory: past the total budget nothing new is tracked until the window ends.
        if client in self._by_client or len(self._by_client) < self.total:
            self._by_client[client] = self._by_client.get(client, 0) + 1

    def retry_after_sec(self) -> int:
        return max(1, int(self._window_start + self.window_sec - self.clock()) + 1)

    def _roll(self) -> None:
        if self.clock() - self._window_start >= self.window_sec:
            self._window_start, self._by_client, self._total = self.clock(), {}, 0
