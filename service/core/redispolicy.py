"""Redis's maxmemory-policy as plain data: what may evict, and what to tell an operator.

Pure (no I/O): service/adapters/eviction.py reads the policy from Redis, the web process,
the worker and `dealkeeper status` report it.
"""

from __future__ import annotations

from dataclasses import dataclass

SAFE_POLICY = "noeviction"
FIX_HINT = (
    "set it to noeviction: on Heroku `heroku redis:maxmemory REDIS_URL --policy noeviction`, "
    "elsewhere `CONFIG SET maxmemory-policy noeviction` and `maxmemory-policy noeviction` in "
    "redis.conf (or your provider's parameter group)"
)


@dataclass(frozen=True)
class EvictionPolicy:
    """Redis's maxmemory-policy, or None when Redis would not say."""

    name: str | None

    @property
    def shown(self) -> str:
        return self.name or "unknown"

    @property
    def may_evict(self) -> bool:
        """True only for a policy known to delete keys (an unknown one is not held against us)."""
        return self.name is not None and self.name != SAFE_POLICY

    def problem(self) -> str | None:
        """What an operator must do, when the policy may evict; None when all is well."""
        if not self.may_evict:
            return None
        return (
            f"Redis maxmemory-policy is {self.name}: a full Redis deletes keys, queued events "
            f"included, without telling anyone; {FIX_HINT}"
        )
