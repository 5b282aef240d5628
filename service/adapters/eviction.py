"""Whether Redis may delete our keys when it fills up (its `maxmemory-policy`).

Any policy but `noeviction` lets a full Redis drop keys to make room, queued jobs and dedupe
records included, and nothing notices: the web process answered 202 for those events and
Close never sends them again. With `noeviction` a full Redis refuses writes instead, the
webhook is answered 503 and Close retries it. So every process says so loudly at start, and
`/readyz` refuses while the policy may evict.

The policy is read from `INFO memory` (field `maxmemory_policy`), which managed Redis
services allow, and else from `CONFIG GET` (Heroku and ElastiCache refuse or rename CONFIG).
When neither answers the policy is unknown: reported as such (WARNING at start, "unknown"
in `dealkeeper status`) but not counted against readiness, which would otherwise keep the
service out of rotation on a Redis that may well be fine.

The volatile-* policies are no safer: our dedupe records and pending sets carry a TTL, and
losing one lets an event be applied twice or out of order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from redis.exceptions import OutOfMemoryError, ResponseError

from service.core.redispolicy import FIX_HINT, EvictionPolicy


def read_policy(connection: redis.Redis) -> EvictionPolicy:
    """The policy from INFO memory, else CONFIG GET; unknown when Redis refuses both.

    Connection errors propagate: the caller already reports an unreachable Redis."""
    try:
        name = connection.info("memory").get("maxmemory_policy")
    except ResponseError:  # INFO disabled or renamed: try CONFIG
        name = None
    if not name:
        try:
            name = connection.config_get("maxmemory-policy").get("maxmemory-policy")
        except ResponseError:  # CONFIG disabled or renamed (Heroku, ElastiCache)
            name = None
    if isinstance(name, bytes):
        name = name.decode()
    return EvictionPolicy(str(name) if name else None)


def log_at_start(connection: redis.Redis, log: logging.Logger) -> EvictionPolicy | None:
    """Log an evicting policy at ERROR (an unknown one at WARNING) when a process starts.

    A Redis that does not answer yet is not this check's business (None): the process rides
    out the outage, and /readyz reports the policy once Redis is back."""
    try:
        policy = read_policy(connection)
    except redis.RedisError:
        return None
    if policy.may_evict:
        log.error("redis_may_evict", extra={"policy": policy.name, "hint": FIX_HINT})
    elif policy.name is None:
        log.warning(
            "redis_policy_unknown",
            extra={
                "hint": "Redis refused INFO and CONFIG; check with your provider that its "
                "maxmemory-policy is noeviction (ElastiCache and Memorystore default to "
                "volatile-lru)"
            },
        )
    return policy


class PolicyWatch:
    """The policy, read again at most every `ttl_sec`: /readyz costs no extra round trip
    per probe, and an operator's fix shows within a minute."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        ttl_sec: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.ttl_sec = ttl_sec
        self.clock = clock
        self._known: tuple[float, EvictionPolicy] | None = None

    def remember(self, policy: EvictionPolicy) -> None:
        """Take a policy read elsewhere (at start) as fresh."""
        self._known = (self.clock(), policy)

    def current(self) -> EvictionPolicy:
        """The cached policy, or a fresh read once it is older than ttl_sec (RedisError when
        Redis does not answer)."""
        now = self.clock()
        if self._known is None or now - self._known[0] >= self.ttl_sec:
            self._known = (now, read_policy(self.connection))
        return self._known[1]


def is_out_of_memory(error: BaseException) -> bool:
    """Whether Redis refused a write because it is full (maxmemory reached, noeviction).

    redis-py raises OutOfMemoryError for the plain reply; a refusal inside a Lua script may
    come back wrapped in a script error (Redis 6), so the reply's text is checked too."""
    return isinstance(error, OutOfMemoryError) or "OOM command not allowed" in str(error)
