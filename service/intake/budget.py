"""How many refused webhooks a web process logs and counts, per client and in all, per minute.

A refusal is never decided here: every delivery is read (the 1 MiB cap bounds that) and its
signature checked, so a validly signed one is accepted however many bad ones came before
it. What a flood can still cost is a WARNING line and a Redis counter per refusal; past the
budget those stop for the rest of the minute. A client past its own share no longer gets
lines, while other clients' refusals (Close's, signed with a wrong key: the outage the
rejected_401 counter is watched for) still do until the total is spent. Kept in memory and
pure apart from the injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_PER_CLIENT_PER_MIN = 60
DEFAULT_TOTAL_PER_MIN = 1200
WINDOW_SEC = 60.0


class RejectionBudget:
    """How many refused webhooks a client, and everyone together, may have recorded per
    window."""

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
        self.muted = 0  # refusals of this window left unrecorded

    def exhausted(self, client: str) -> bool:
        """True when this client (or everyone) used up the budget of this window."""
        self._roll()
        return self._total >= self.total or self._by_client.get(client, 0) >= self.per_client

    def spend(self, client: str) -> bool:
        """Count one refused delivery: True when it is within the budget, so worth a log
        line and a counter; False once the client's share or the total is spent."""
        if self.exhausted(client):
            self.muted += 1
            return False
        self._total += 1
        # Bounded memory: past the total budget nothing new is tracked until the window ends.
        if client in self._by_client or len(self._by_client) < self.total:
            self._by_client[client] = self._by_client.get(client, 0) + 1
        return True

    def _roll(self) -> None:
        if self.clock() - self._window_start >= self.window_sec:
            self._window_start, self._by_client, self._total = self.clock(), {}, 0
            self.muted = 0
