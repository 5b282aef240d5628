"""One Close rate limit for every process: a shared pace and a shared pause, in Redis.

Close limits requests per API key and endpoint group, across all our processes, and says
where we stand in a `ratelimit: limit=N, remaining=M, reset=R` header: N is the count for an
enforcement window of a length Close does not state (its example: `limit=100, remaining=50,
reset=5`), M what is left of it, R the seconds until it ends; all of whichever limit, the
key's or the organization's, is closest. So:
- every request first takes a slot from a pacer kept in Redis (a few lines of Lua that
  answer "go" or "wait N ms" in one round trip, on Redis's own clock): all workers
  together keep one pace per group;
- within a window Close has told us about, the pace spreads what remains over the time
  left (at 97%, so jitter at the window's edges costs no 429s); what remains counts every
  slot taken since the request Close answered, in any process, so requests still in
  flight are not spent twice. Between windows, until Close speaks of the next one, the
  pace is `limit` per window, the window being the longest `reset` Close has stated;
  CLOSE_RATE_LIMIT_PER_SEC before Close has stated anything. CLOSE_RATE_LIMIT, when set,
  is a ceiling on top;
- a 429, or a `ratelimit` header saying nothing remains, pauses the group for everyone
  until Close's reset;
- a wait longer than a few seconds is not slept: CloseRateLimitedError sends the job back
  to RQ to run again once the wait is over.

An answer is written to Redis only when it tells the pacer something it did not count on:
the first of a window, or one leaving less than the pacer expected (another integration
spending the organization's limit). Usually neither, so pacing costs no round trip beyond
taking the slot, which jobs take on a pipeline they send anyway (`take_on`).

Why not a rate-limit library (`limits`, `pyrate-limiter`): they answer allowed or not, but
draining a backlog at exactly the allowed pace needs "how long until the next slot",
across processes, which a pacer in Redis gives directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import redis

from service.config.defaults import CLOSE_RATE_LIMIT_PER_SEC
from service.config.errors import CloseRateLimitedError
from service.core.retry import RateLimitInfo

if TYPE_CHECKING:
    from service.adapters.close import Exchange

# One hash per group: the last slot's time, the count of slots taken, and what Close last
# stated (limit, the window learned, the window's end, what is left of it).
WINDOW_PREFIX = "dk:ratelimit:window:"
PAUSE_PREFIX = "dk:ratelimit:pause:"
# Share of what Close allows to pace at: under it, so clock and network jitter at the
# edges of Close's windows cost no 429s, and close enough to drain at nearly its rate.
SHARE_OF_STATED_LIMIT = 0.97
# What Close stated (and the learned window) is kept this long after the group's last use.
STATED_TTL_SEC = 3600
# A slot taken ahead (`take_on`) is used only by a request sent this soon after: later, the
# request takes a slot of its own, so requests never bunch up behind slots taken long ago.
PREPAID_MAX_AGE_SEC = 0.25
# What a slot's `left` is when the pacer knew of no window; a slot number or time not known.
UNKNOWN = -1

# KEYS[1]: the group's window hash; KEYS[2]: the group's pause (until, ms).
# ARGV[1]: µs between requests before Close has stated a limit; ARGV[2]: the least µs
# between requests (a configured ceiling; 0: none); ARGV[3]: the share of what Close
# allows to use; ARGV[4]: the hash's time to live (ms).
# Returns {0, slot number, left in the window after it (-1: no window known), the slot's
# time (µs)} for a slot taken, or {ms to wait first, 0, -1, 0}. (Doubles hold µs since 1970
# exactly.)
_TAKE_SLOT = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local paused_until = tonumber(redis.call('GET', KEYS[2]) or 0)
local s = redis.call('HMGET', KEYS[1], 'last_us', 'limit', 'window_us', 'end_us', 'left')
local last, limit, window = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
local ends, left = tonumber(s[4]), tonumber(s[5])
local share = tonumber(ARGV[3])
local gap = tonumber(ARGV[1])
local known = ends ~= nil and left ~= nil and ends > now_us
-- A pause and a spent window usually end together (the answer that said "nothing
-- remains" set both); wait for whichever ends later, in one wait, not two.
local wait_ms = math.max(paused_until - now, 0)
if known and left < 1 then wait_ms = math.max(wait_ms, math.ceil((ends - now_us) / 1000)) end
if wait_ms > 0 then return {wait_ms, 0, -1, 0} end
if known then
  gap = (ends - (last or now_us)) / (left * share)
elseif limit and window and limit > 0 and window > 0 then
  gap = window / (limit * share)
end
gap = math.max(gap, tonumber(ARGV[2]))
if last and last + gap > now_us then return {math.ceil((last + gap - now_us) / 1000), 0, -1, 0} end
redis.call('HSET', KEYS[1], 'last_us', string.format('%d', now_us))
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
left = -1
if known then left = redis.call('HINCRBY', KEYS[1], 'left', -1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {0, seq, left, now_us}
"""

# KEYS[1]: the group's window hash. ARGV[1], ARGV[2]: the slot number and time (µs) of the
# request Close answered (-1: unknown); ARGV[3..5]: limit, remaining, reset (µs) as Close
# stated them; ARGV[6]: the hash's time to live (ms).
# What remains loses the slots taken since that request's: they are in flight, or sent,
# and Close had not counted them. The window is taken to end `reset` after that request's
# slot, not after its answer: a slot taken later than that reaches Close, as this request
# did, after the window's end, so the window's remaining requests are spread over the time
# left to slots that count in it.
_STATE = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 'seq', 'window_us')
local answered, slot_us = tonumber(ARGV[1]), tonumber(ARGV[2])
local since = 0
if answered >= 0 then since = math.max((tonumber(s[1]) or 0) - answered, 0) end
if slot_us < 0 then slot_us = now_us end
local reset = tonumber(ARGV[5])
local window = math.max(tonumber(s[2]) or 0, reset)
redis.call('HSET', KEYS[1], 'limit', ARGV[3], 'window_us', string.format('%d', window),
  'end_us', string.format('%d', slot_us + reset), 'left', tonumber(ARGV[4]) - since)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
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
        self._state = connection.register_script(_STATE)
        self._pause = connection.register_script(_PAUSE)
        # (method, path) -> (when, the slot) for slots taken ahead (take_on, then took).
        self._prepaid: dict[tuple[str, str], tuple[float, Slot]] = {}
        # (method, path) -> the slot of the request sent and not yet answered: one request
        # at a time per process, so its answer finds it here.
        self._sent: dict[tuple[str, str], Slot] = {}

    def take_on(self, pipe: Any, method: str, path: str) -> None:
        """Queue the taking of a slot for a request about to be sent, on a pipeline that is
        going to Redis anyway (one reply, for `took`): no round trip of its own."""
        # EVAL, not EVALSHA: inside MULTI a script Redis lost (restart) cannot be loaded.
        group = endpoint_group(method, path)
        pipe.eval(_TAKE_SLOT, 2, *self._keys(group), *self._args())

    def took(self, method: str, path: str, reply: Any) -> None:
        """Keep the slot `take_on` got, for this request's `before`; a wait or an error
        leaves the request to take its slot as usual."""
        slot = None if isinstance(reply, Exception) else _granted(reply)
        if slot is not None:
            self._prepaid[(method.upper(), path)] = (self.clock(), slot)

    def forget_prepaid(self) -> None:
        """Drop slots taken ahead and not used (the job ended before sending)."""
        self._prepaid.clear()

    def before(self, method: str, path: str) -> None:
        """Wait for this request's slot, or raise CloseRateLimitedError when that is long."""
        request = (method.upper(), path)
        prepaid = self._prepaid.pop(request, None)
        if prepaid is not None and self.clock() - prepaid[0] < PREPAID_MAX_AGE_SEC:
            self._sent[request] = prepaid[1]
            return
        group = endpoint_group(method, path)
        while True:
            reply = self._take(keys=self._keys(group), args=self._args())
            slot = _granted(reply)
            if slot is not None:
                self._sent[request] = slot
                return
            wait_sec = int(reply[0]) / 1000
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
        return [WINDOW_PREFIX + group, PAUSE_PREFIX + group]

    def _args(self) -> list[float]:
        return [self.interval_us, self.ceiling_us, SHARE_OF_STATED_LIMIT, STATED_TTL_SEC * 1000]

    def after(self, exchange: Exchange) -> None:
        """Pause the group for everyone when Close says its limit is reached, and keep what
        Close states of its window for the pace, when the pacer did not count on it."""
        group = endpoint_group(exchange.method, exchange.path)
        slot = self._sent.pop((exchange.method.upper(), exchange.path), None)
        pause_sec = pause_for(exchange)
        if pause_sec:
            self._pause(keys=[PAUSE_PREFIX + group], args=[max(1, round(pause_sec * 1000))])
        info = exchange.rate_limit
        if info is not None and _tells_more(info, slot):
            self._state(keys=[WINDOW_PREFIX + group], args=_state_args(info, slot))


class Slot(NamedTuple):
    """A slot taken: its number among the group's slots, what was left of the window after
    it as the pacer counted (UNKNOWN when it knew of no window), and when (Redis's µs)."""

    number: int
    left: int
    at_us: int


def _granted(reply: Any) -> Slot | None:
    """The slot a take's reply grants, or None when it asks for a wait."""
    wait_ms, number, left, at_us = (int(value) for value in reply)
    return Slot(number, left, at_us) if wait_ms <= 0 else None


def _tells_more(info: RateLimitInfo, slot: Slot | None) -> bool:
    """Whether an answer is worth a Redis write: it states a whole window (limit,
    remaining, reset) and the pacer knew of no window when the request left, or counted
    on more than Close says remains."""
    if info.limit is None or info.remaining is None or info.reset_sec is None:
        return False
    return slot is None or slot.left == UNKNOWN or info.remaining < slot.left


def _state_args(info: RateLimitInfo, slot: Slot | None) -> list[int]:
    reset_us = max(0, round((info.reset_sec or 0.0) * 1_000_000))
    number, at_us = (UNKNOWN, UNKNOWN) if slot is None else (slot.number, slot.at_us)
    limit, remaining = info.limit or 0, info.remaining or 0
    return [number, at_us, limit, remaining, reset_us, STATED_TTL_SEC * 1000]


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
