"""Which Close organization CLOSE_API_KEY belongs to, so events of another are refused.

CLOSE_WEBHOOK_SECRET may hold several signature keys (rotation, several subscriptions). A
key of another organization's subscription would let that organization's events in, to be
read, planned and written with our API key. Every event names its `organization_id`, and
`GET /me/` tells which organizations our key's user belongs to ("Useful for determining
your own id and organization_id", Close's Users API).

Workers ask Close (at start, then every ORGANIZATIONS_REFRESH_SEC) and leave the answer
in Redis for the web processes, which read it at most every ORGANIZATIONS_MEMO_SEC, so a
webhook costs no extra round trip:

    dk:close:organizations   the organization ids, comma-separated; expires after
                             ORGANIZATIONS_TTL_SEC unless a worker refreshes it

Until it is known (dry run without a key, /me/ failing, no worker yet), events are
accepted as before: refusing them would lose real events for want of a lookup.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from service.adapters.close import CloseAPI
from service.config.errors import CloseAPIError, CloseUnavailableError
from service.core.events import Event

log = logging.getLogger("dealkeeper.organization")
ORGANIZATIONS_KEY = "dk:close:organizations"
ORGANIZATIONS_REFRESH_SEC = 3600
# Outlives a few missed refreshes, but not a key moved to another organization for long
# after every worker is gone.
ORGANIZATIONS_TTL_SEC = 6 * ORGANIZATIONS_REFRESH_SEC
# After /me/ failed, a worker asks again this much later (the maintenance that asks runs
# in the worker's loop, so a Close outage must not hold it up every 30 seconds).
ORGANIZATIONS_RETRY_SEC = 300
# How long a web process trusts what it read: a newly learnt organization is enforced
# within this long.
ORGANIZATIONS_MEMO_SEC = 30.0


def organizations_of(me: Mapping[str, Any]) -> frozenset[str]:
    """The organization ids `GET /me/` names: its `organizations` (a user may belong to
    several, and /me/ does not say which one the key is of) and any `organization_id`."""
    listed = me.get("organizations")
    found = (
        [o.get("id") for o in listed if isinstance(o, Mapping)] if isinstance(listed, list) else []
    )
    found.append(me.get("organization_id"))
    return frozenset(i for i in found if isinstance(i, str) and i)


def refusal(event: Event, known: frozenset[str]) -> str | None:
    """Why the event is not ours to serve, naming the subscription it came through; None
    to accept it (ours, or either side unknown)."""
    organization = event.organization_id
    if not organization or not known or organization in known:
        return None
    through = f" (webhook subscription {event.subscription_id})" if event.subscription_id else ""
    return (
        f"event of organization {organization}{through}, but CLOSE_API_KEY belongs to "
        f"{', '.join(sorted(known))}: CLOSE_WEBHOOK_SECRET holds that subscription's "
        "signature key; remove it"
    )


class OrganizationWatch:
    """A worker's view: asks Close, keeps the answer in process and in Redis."""

    def __init__(
        self,
        connection: redis.Redis,
        close: CloseAPI,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._close = close
        self._clock = clock
        self.known: frozenset[str] = frozenset()
        self._next_at: float | None = None  # when to ask Close again (None: at once)

    def refresh_if_due(self) -> None:
        """Ask Close when the answer is old (or the last try failed long enough ago)."""
        if self._next_at is None or self._clock() >= self._next_at:
            self.refresh()

    def refresh(self) -> None:
        """Ask `GET /me/` now; on failure keep what was known and say why (no secrets)."""
        try:
            found = organizations_of(self._close.get_me())
        except (CloseAPIError, CloseUnavailableError) as error:
            self._next_at = self._clock() + ORGANIZATIONS_RETRY_SEC
            log.warning("organization_unknown", extra={"reason": str(error)})
            return
        self._next_at = self._clock() + ORGANIZATIONS_REFRESH_SEC
        if not found:
            log.warning("organization_unknown", extra={"reason": "GET /me/ names none"})
            return
        if found != self.known:
            log.info("organization_learnt", extra={"organizations": sorted(found)})
        self.known = found
        try:
            self._connection.set(
                ORGANIZATIONS_KEY, ",".join(sorted(found)), ex=ORGANIZATIONS_TTL_SEC
            )
        except redis.RedisError as error:  # the web learns it at the next refresh
            log.warning("organization_not_shared", extra={"reason": str(error)})


class KnownOrganizations:
    """A web process's view: what workers left in Redis, read at most every `memo_sec`."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        memo_sec: float = ORGANIZATIONS_MEMO_SEC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._memo_sec = memo_sec
        self._clock = clock
        self._known: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def current(self) -> frozenset[str]:
        """The organization ids our key belongs to; empty while unknown."""
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._memo_sec:
            return self._known
        self._read_at = now
        try:
            raw = self._connection.get(ORGANIZATIONS_KEY)
        except redis.RedisError:
            return self._known  # the enqueue that follows meets the same outage, and says so
        self._known = _parse(raw)
        return self._known


def _parse(raw: bytes | str | None) -> frozenset[str]:
    text = raw.decode() if isinstance(raw, bytes) else raw or ""
    return frozenset(part.strip() for part in text.split(",") if part.strip())
