"""Knobs for throughput and recovery, read from the environment with the other settings.

Each has a default that suits a small team's Close organization; operators change them
for large backlogs, strict rate limits or faster crash recovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.config import defaults


@dataclass(frozen=True)
class Tuning:
    """Rate limit, job timing, recovery and loop-guard settings."""

    # Requests per second, per Close endpoint group, for all processes together. None (the
    # default): pace at 97% of the limit Close states in its `ratelimit` header, and at
    # CLOSE_RATE_LIMIT_PER_SEC (under Close's documented 20/s) until it has stated one. Set:
    # never faster than this either (other integrations share the organization's limit).
    close_rate_limit_per_sec: float | None = None
    close_read_timeout_sec: float = defaults.CLOSE_READ_TIMEOUT_SEC
    job_timeout_sec: int = defaults.JOB_TIMEOUT_SEC
    # How soon a killed worker's job is noticed and retried (docs/architecture.md, "Crashes").
    worker_ttl_sec: int = defaults.WORKER_TTL_SEC
    maintenance_interval_sec: int = defaults.MAINTENANCE_INTERVAL_SEC
    worker_processes: int = defaults.WORKER_PROCESSES
    catchup_interval_sec: int = defaults.CATCHUP_INTERVAL_SEC  # 0: no automatic catch-up
    loop_max_writes_per_hour: int = defaults.LOOP_MAX_WRITES_PER_FIELD_PER_HOUR

    @classmethod
    def from_env(cls, env: Mapping[str, str], problems: list[str]) -> Tuning:
        """Read the knobs; each mistake is appended to `problems`."""
        return cls(
            close_rate_limit_per_sec=(
                _number(
                    env, "CLOSE_RATE_LIMIT", defaults.CLOSE_RATE_LIMIT_PER_SEC, problems, low=0.1
                )
                if (env.get("CLOSE_RATE_LIMIT") or "").strip()
                else None
            ),
            close_read_timeout_sec=_number(
                env, "CLOSE_READ_TIMEOUT", defaults.CLOSE_READ_TIMEOUT_SEC, problems, low=0.1
            ),
            job_timeout_sec=int(
                _number(env, "DEALKEEPER_JOB_TIMEOUT", defaults.JOB_TIMEOUT_SEC, problems, low=1)
            ),
            worker_ttl_sec=int(
                _number(env, "DEALKEEPER_WORKER_TTL", defaults.WORKER_TTL_SEC, problems, low=16)
            ),
            maintenance_interval_sec=int(
                _number(
                    env,
                    "DEALKEEPER_MAINTENANCE_INTERVAL",
                    defaults.MAINTENANCE_INTERVAL_SEC,
                    problems,
                    low=1,
                )
            ),
            worker_processes=_worker_processes(env, problems),
            catchup_interval_sec=int(
                _number(env, "DEALKEEPER_CATCHUP_INTERVAL", defaults.CATCHUP_INTERVAL_SEC, problems)
            ),
            loop_max_writes_per_hour=int(
                _number(
                    env,
                    "DEALKEEPER_LOOP_MAX_WRITES",
                    defaults.LOOP_MAX_WRITES_PER_FIELD_PER_HOUR,
                    problems,
                    low=1,
                )
            ),
        )


def _number(
    env: Mapping[str, str], name: str, default: float, problems: list[str], *, low: float = 0
) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return default
    if value < low:
        problems.append(f"{name} must be at least {low:g}, got {raw!r}")
        return default
    return value


def _worker_processes(env: Mapping[str, str], problems: list[str]) -> int:
    name = "DEALKEEPER_WORKER_PROCESSES"
    value = _number(env, name, defaults.WORKER_PROCESSES, problems, low=1)
    if value != int(value) or value > defaults.WORKER_PROCESSES_MAX:
        problems.append(
            f"{name} must be a whole number from 1 to {defaults.WORKER_PROCESSES_MAX}, "
            f"got {env.get(name)!r}"
        )
        return defaults.WORKER_PROCESSES
    return int(value)
