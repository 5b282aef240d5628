"""One Close rate limit for every process: a shared pace and a shared pause, in Redis.

Close limits requests per API key and endpoint group, across all our processes. So:
- every request first takes a slot from a GCRA pacer kept in Redis (a few lines of Lua
  that answer "go" or "wait N ms" in one round trip, on Redis's own clock): all workers
  together stay under the group's pace;
- the pace is 97% of the limit Close states in its `ratelimit: limit=N` header (kept in
  Redis, so every process follows what any one of them saw), and CLOSE_RATE_LIMIT_PER_SEC
  until Close has stated one; CLOSE_RATE_LIMIT, when set, is a ceiling on top. So a
  backlog drains at nearly the rate Close allows, without 429s at its edges;
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
from typing import TYPE_CHECKING, Any

import redis

from service.defaults import CLOSE_RATE_LIMIT_PER_SEC
from service.errors import CloseRateLimitedError

if TYPE_CHECKING:
    from service.adapters.close import Exchange

PACE_PREFIX = "dk:ratelimit:pace:"
PAUSE_PREFIX = "dk:ratelimit:pause:"
LIMIT_PREFIX = "dk:ratelimit:limit:"
# Share of Close's stated limit to pace at: under it, so clock and network jitter at the
# edges of Close's windows cost no 429s, and close enough to drain at nearly its rate.
SHARE_OF_STATED_LIMIT = 0.97
# Close states its limits per second; a stated limit is kept this long after it was seen.
STATED_LIMIT_TTL_SEC = 3600
# A slot taken ahead (`take_on`) is used only by a request sent this soon after: later, the
# request takes a slot of its own, so requests never bunch up behind slots taken long ago.
PREPAID_MAX_AGE_SEC = 0.25

# KEYS[1]: the group's theoretical arrival time (µs); KEYS[2]: the group's pause (until, ms);
# KEYS[3]: the limit Close stated for the group (requests per second).
# ARGV[1]: µs between requests until Close has stated a limit; ARGV[2]: the least µs between
# requests (a configured ceiling; 0: none); ARGV[3]: the share of the stated limit to use.
# Returns 0 (go, slot taken) or the ms to wait first. (Doubles hold µs since 1970 exactly.)
_TAKE_SLOT = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local paused_until = tonumber(redis.call('GET', KEYS[2]) or 0)
if paused_until > now then return paused_until - now end
local interval = tonumber(ARGV[1])
local stated = tonumber(redis.call('GET', KEYS[3]) or 0)
if stated > 0 then interval = math.ceil(1000000 / (stated * tonumber(ARGV[3]))) end
interval = math.max(interval, tonumber(ARGV[2]))
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now_us), now_us)
if tat > now_us then return math.ceil((tat - now_us) / 1000) end
local ttl_ms = math.ceil(interval / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', ttl_ms)
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
        rate_per_sec: float | None,
        max_inline_wait_sec: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`rate_per_sec`: a ceiling on the pace; None: follow Close's stated limit alone."""
        self.interval_us = max(1, round(1_000_000 / (rate_per_sec or CLOSE_RATE_LIMIT_PER_SEC)))
        self.ceiling_us = 0 if rate_per_sec is None else self.interval_us
        self.max_inline_wait_sec = max_inline_wait_sec
        self.sleep = sleep
        self.clock = clock
        self.connection = connection
        self._take = connection.register_script(_TAKE_SLOT)
        self._pause = connection.register_script(_PAUSE)
        self._stated: dict[str, tuple[int, float]] = {}  # group -> (limit, when written)
        # (method, path) -> when its slot was taken ahead (take_on, then took).
        self._prepaid: dict[tuple[str, str], float] = {}

    def take_on(self, pipe: Any, method: str, path: str) -> None:
        """Queue the taking of a slot for a request about to be sent, on a pipeline that is
        going to Redis anyway (one reply, for `took`): no round trip of its own."""
        # EVAL, not EVALSHA: inside MULTI a script Redis lost (restart) cannot be loaded.
        pipe.eval(_TAKE_SLOT, 3, *self._keys(endpoint_group(method, path)), *self._args())

    def took(self, method: str, path: str, reply: Any) -> None:
        """Keep the slot `take_on` got (reply 0), for this request's `before`; a wait or an
        error leaves the request to take its slot as usual."""
        if not isinstance(reply, Exception) and int(reply) <= 0:
            self._prepaid[(method.upper(), path)] = self.clock()

    def forget_prepaid(self) -> None:
        """Drop slots taken ahead and not used (the job ended before sending)."""
        self._prepaid.clear()

    def before(self, method: str, path: str) -> None:
        """Wait for this request's slot, or raise CloseRateLimitedError when that is long."""
        taken = self._prepaid.pop((method.upper(), path), None)
        if taken is not None and self.clock() - taken < PREPAID_MAX_AGE_SEC:
            return
        group = endpoint_group(method, path)
        while True:
            wait_ms = int(self._take(keys=self._keys(group), args=self._args()))
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

    def _keys(self, group: str) -> list[str]:
        return [PACE_PREFIX + group, PAUSE_PREFIX + group, LIMIT_PREFIX + group]

    def _args(self) -> list[float]:
        return [self.interval_us, self.ceiling_us, SHARE_OF_STATED_LIMIT]

    def after(self, exchange: Exchange) -> None:
        """Pause the group for everyone when Close says its limit is reached, and keep the
        limit Close states for the pace."""
        group = endpoint_group(exchange.method, exchange.path)
        pause_sec = pause_for(exchange)
        if pause_sec:
            self._pause(keys=[PAUSE_PREFIX + group], args=[max(1, round(pause_sec * 1000))])
        info = exchange.rate_limit
        if info is not None and info.limit:
            self._remember_limit(group, info.limit)

    def _remember_limit(self, group: str, limit: int) -> None:
        """Write the stated limit when it changed, or before it expires: not on every answer."""
        known = self._stated.get(group)
        now = self.clock()
        if known is not None and known[0] == limit and now - known[1] < STATED_LIMIT_TTL_SEC / 2:
            return
        self.connection.set(LIMIT_PREFIX + group, limit, ex=STATED_LIMIT_TTL_SEC)
        self._stated[group] = (limit, now)


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
