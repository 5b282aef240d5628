"""What reached the fake, and what the next requests should suffer: faults, delays, 429s."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Group = Literal["read", "write"]
DEFAULT_RATE_LIMIT = 1000  # per second: generous, so tests meet 429s only when they ask
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE", "PATCH"})
HOLD_POLL_SEC = 0.02  # how often a held request looks whether the fake is stopping


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; `path` is relative to /api/v1/."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]  # names lower-cased
    received_at: float = field(default_factory=time.monotonic)  # for latency benchmarks


@dataclass
class Fault:
    """Answer the next `count` matching requests with this status instead of serving them
    (`after_serving`: serve them first, then answer with this status: the write landed but
    its answer was lost, as behind a gateway that gave up with a 502 or 504)."""

    count: int
    status: int
    method: str | None = None
    path_prefix: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    after_serving: bool = False


@dataclass
class Delay:
    """Hold the next `count` matching requests for `seconds` before serving them (or, with
    `release`, until it is set, for at most `seconds`; `after_serving`: serve them first and
    hold only the answer, so a client's read timeout ends a write that has landed)."""

    count: int
    seconds: float
    method: str | None = None
    path_prefix: str | None = None
    release: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)  # set once one is held
    after_serving: bool = False

    def hold(self, stopping: threading.Event) -> None:
        """Hold the request in hand; the fake stopping cuts it short."""
        self.held.set()
        deadline = time.monotonic() + self.seconds
        while not stopping.is_set() and time.monotonic() < deadline:
            if self.release is None:
                stopping.wait(deadline - time.monotonic())
            elif self.release.wait(HOLD_POLL_SEC):
                return


@dataclass(frozen=True)
class RateLimitState:
    """The window a request fell into, as the `ratelimit` header reports it."""

    limit: int
    remaining: int
    reset_sec: float
    allowed: bool

    def header(self) -> str:
        """`limit=N, remaining=M, reset=R` with R in decimal seconds."""
        return f"limit={self.limit}, remaining={self.remaining}, reset={self.reset_sec:.3f}"

    def retry_after(self) -> str:
        """Whole seconds, rounded up, as Close's Retry-After."""
        return str(max(1, math.ceil(self.reset_sec)))


def group_of(method: str) -> Group:
    """Close limits per endpoint group; here, reads and writes."""
    return "write" if method.upper() in WRITE_METHODS else "read"


class RateLimiter:
    """Fixed windows per API key and group, on the real monotonic clock: each opens with the
    first request after the last one ended and lasts one second unless `set_limit` says
    otherwise (Close states a count per window, and the seconds until it ends, but not the
    window's length)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._limits: dict[Group, tuple[int, float]] = {
            "read": (DEFAULT_RATE_LIMIT, 1.0),
            "write": (DEFAULT_RATE_LIMIT, 1.0),
        }
        self._windows: dict[tuple[str, Group], tuple[float, int]] = {}

    def set_limit(self, limit: int, *, window_sec: float, group: Group) -> None:
        """From now on, `limit` requests per `window_sec` per key in `group`."""
        self._limits[group] = (limit, window_sec)
        self._windows = {k: v for k, v in self._windows.items() if k[1] != group}

    def take(self, api_key_id: str, group: Group) -> RateLimitState:
        """Count one request; `allowed` is False when the window is used up."""
        limit, window_sec = self._limits[group]
        now = self._clock()
        started, used = self._windows.get((api_key_id, group), (now, 0))
        if now - started >= window_sec:
            started, used = now, 0
        allowed = used < limit
        used += int(allowed)
        self._windows[(api_key_id, group)] = (started, used)
        reset = max(started + window_sec - now, 0.0)
        return RateLimitState(limit, max(limit - used, 0), reset, allowed)


class Traffic:
    """The request record and the rules that shape the next responses (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._delays: list[Delay] = []
        self._answers: Counter[tuple[str, int]] = Counter()
        self.rate_limiter = RateLimiter()

    def record(self, request: RecordedRequest) -> None:
        """Remember one request."""
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests (and answers) so far."""
        with self._lock:
            self._requests.clear()
            self._answers.clear()

    def answered(self, method: str, status: int) -> None:
        """Count one answer the fake gave."""
        with self._lock:
            self._answers[(method, status)] += 1

    def answers(self) -> dict[tuple[str, int], int]:
        """How many answers of each (method, status) the fake gave so far."""
        with self._lock:
            return dict(self._answers)

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults apply in the order they were added."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Drop every fault still queued (a standing one lifted)."""
        with self._lock:
            self._faults.clear()

    def add_delay(self, delay: Delay, *, ahead: bool = False) -> None:
        """Queue a delay (`ahead`: before those already queued, e.g. a standing latency)."""
        with self._lock:
            self._delays.insert(0 if ahead else len(self._delays), delay)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The fault this request suffers, if any (one use of it is spent)."""
        with self._lock:
            return _take(self._faults, method, path)

    def take_delay(self, method: str, path: str) -> Delay | None:
        """The delay this request suffers, if any (one use of it is spent)."""
        with self._lock:
            return _take(self._delays, method, path)


_Rule = TypeVar("_Rule", Fault, Delay)


def _take(rules: list[_Rule], method: str, path: str) -> _Rule | None:
    for rule in rules:
        if is_match(method, path, method_filter=rule.method, path_prefix=rule.path_prefix):
            rule.count -= 1
            if rule.count <= 0:
                rules.remove(rule)
            return rule
    return None


def is_match(method: str, path: str, *, method_filter: str | None, path_prefix: str | None) -> bool:
    """True when a request fits a method filter and a path prefix (None matches anything)."""
    method_ok = method_filter is None or method_filter.upper() == method.upper()
    return method_ok and (path_prefix is None or path.startswith(path_prefix))
