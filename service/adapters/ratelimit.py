"""One Close rate limit for every process: a shared pace and a shared pause, in Redis.

Close limits requests per API key and endpoint group, across all our processes. So:
- every request first takes a slot from a GCRA pacer kept in Redis (a few lines of Lua
  that answer "go" or "wait N ms" in one round trip, on Redis's own clock): all workers
  together stay under CLOSE_RATE_LIMIT per group;
- a 429, or a `ratelimit` header saying nothing remains, pauses the group for everyone
  until Close's reset;
- a wait longer than a few seconds is not slept: CloseRateLimitedError sends the job back
  to RQ to run again once the wait is over.

Why not a rate-limit library (`limits`, `pyrate-limiter`): they answer allowed or not, but
draining a backlog at exactly the allowed pace needs "how long until the next slot",
across processes, which GCRA gives directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis

from service.errors import CloseRateLimitedError

if TYPE_CHECKING:
    from service.adapters.close import Exchange

PACE_PREFIX = "dk:ratelimit:pace:"
PAUSE_PREFIX = "dk:ratelimit:pause:"

# KEYS[1]: the group's theoretical arrival time (ms); KEYS[2]: the group's pause (until, ms)
# ARGV[1]: ms between requests. Returns 0 (go, slot taken) or the ms to wait first.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused_until = tonumber(redis.call('GET', KEYS[2]) or 0)
if paused_until > now then return paused_until - now end
local interval = tonumber(ARGV[1])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
if tat > now then return tat - now end
redis.call('SET', KEYS[1], tat + interval, 'PX', interval + 1000)
return 0
"""

# KEYS[1]: the group's pause; ARGV[1]: pause length (ms). Only ever lengthens a pause.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or 0) then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""


def endpoint_group(method: str, path: str) -> str:
    """Close's groups are sets of paths and methods; reads and writes of one resource
    are kept apart, as Close's own example does (GET /lead/ vs POST/PUT /activity/)."""
    kind = "read" if method.upper() in ("GET", "HEAD") else "write"
    resource = path.strip("/").split("/", 1)[0] or "root"
    return f"{kind}:{resource}"


class SharedRateLimiter:
    """Paces and pauses Close requests for all processes sharing one Redis."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        rate_per_sec: float,
        max_inline_wait_sec: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval_ms = max(1, round(1000 / rate_per_sec))
        self.max_inline_wait_sec = max_inline_wait_sec
        self.sleep = sleep
        self._take = connection.register_script(_TAKE_SLOT)
        self._pause = connection.register_script(_PAUSE)

    def before(self, method: str, path: str) -> None:
        """Wait for this request's slot, or raise CloseRateLimitedError when that is long."""
        group = endpoint_group(method, path)
        while True:
            wait_ms = int(
                self._take(
                    keys=[PACE_PREFIX + group, PAUSE_PREFIX + group], args=[self.interval_ms]
                )
            )
            if wait_ms <= 0:
                return
            wait_sec = wait_ms / 1000
            if wait_sec > self.max_inline_wait_sec:
                raise CloseRateLimitedError(
                    retry_after_sec=wait_sec,
                    method=method,
                    path=path,
                    status=None,
                    reason=f"{group} paused by the shared rate limit",
                )
            self.sleep(wait_sec)

    def after(self, exchange: Exchange) -> None:
        """Pause the group for everyone when Close says its limit is reached."""
        pause_sec = pause_for(exchange)
        if pause_sec:
            group = endpoint_group(exchange.method, exchange.path)
            self._pause(keys=[PAUSE_PREFIX + group], args=[max(1, round(pause_sec * 1000))])


def pause_for(exchange: Exchange) -> float | None:
    """How long Close asks the whole group to wait after this answer, if at all."""
    if exchange.status == 429:
        return exchange.wait_sec or _reset(exchange) or 1.0
    info = exchange.rate_limit
    if info is not None and info.remaining == 0:
        return _reset(exchange)
    return None


def _reset(exchange: Exchange) -> float | None:
    info = exchange.rate_limit
    return info.reset_sec if info is not None and info.reset_sec else None
