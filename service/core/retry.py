"""Close's retry policy, pure: read rate-limit headers, pick a wait, classify an outcome.

The Close adapter carries the decisions out (sleeps, logs, raises); nothing here sleeps, reads
the clock or logs, so every branch is a row a unit test can pin. Facts behind the table:
close-api-notes.md sections 5 and 7.

    status                      idempotent method           POST
    2xx, 3xx                    Success                     Success
    None (timeout, refused),    RetryIn(backoff) until      Transient
      502, 503, 504               attempts run out, then
                                  Transient
    500, other 5xx              Transient                   Transient
    429                         RetryIn(wait + jitter) when the wait is short and attempts
                                remain, else RateLimited(wait)
    404                         NotFound                    NotFound
    other 4xx                   Permanent                   Permanent
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

# Close's own client repeats 502 and 504 only for GET (closeio-api). Our one write is a PUT:
# setting fields to values is idempotent, and CloseClient.update_opportunity reads the deal
# again before repeating one that adds or removes a list value (`.add`/`.remove`).
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD"})
# Added on top of the server's wait so workers told the same reset do not return in lockstep.
RATE_LIMIT_JITTER_SEC = 0.25
# A 429 that names no wait at all: the official client's default (closeio-api).
RATE_LIMIT_FALLBACK_WAIT_SEC = 2.0
# Separate-header forms, after the combined `ratelimit` header: the RFC draft's split
# headers, then Close's legacy ones.
_SEPARATE_PREFIXES = ("ratelimit-", "x-rate-limit-")


@dataclass(frozen=True)
class RateLimitInfo:
    """What a response says about the rate limit closest to being hit."""

    limit: int | None
    remaining: int | None
    reset_sec: float | None


@dataclass(frozen=True)
class RetryIn:
    """Repeat the request in-process after `sec` seconds."""

    sec: float


@dataclass(frozen=True)
class RateLimited:
    """Close asks for a wait too long to hold a worker: reschedule the job in `sec` seconds."""

    sec: float


@dataclass(frozen=True)
class Transient:
    """A failure that may heal later, but not within this call."""

    reason: str


@dataclass(frozen=True)
class Permanent:
    """Repeating the request cannot help."""

    reason: str


@dataclass(frozen=True)
class NotFound:
    """The object is gone."""


@dataclass(frozen=True)
class Success:
    """The request worked."""


Decision = RetryIn | RateLimited | Transient | Permanent | NotFound | Success

_Kind = Literal["success", "retry", "transient", "rate_limited", "not_found", "permanent"]

# Statuses with a rule of their own; every other status follows its class in _kind_of.
_KIND_BY_STATUS: Mapping[int, _Kind] = {
    404: "not_found",
    429: "rate_limited",
    500: "transient",  # a bug on Close's side seldom heals within seconds
    502: "retry",
    503: "retry",
    504: "retry",
}


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """`ratelimit: limit=100, remaining=50, reset=2.5`, else the separate legacy headers."""
    lowered = _lower_keys(headers)
    return _parse_combined(lowered.get("ratelimit")) or _parse_separate(lowered)


def rate_limit_wait_sec(
    headers: Mapping[str, str], body: object = None, *, now_sec: float | None = None
) -> float | None:
    """Seconds a 429 asks us to wait, or None when it does not say.

    Close's order of precision: the `ratelimit` reset (decimal), `retry-after` (whole seconds,
    or an HTTP date, read only when `now_sec` gives the current Unix time), the separate
    reset headers, then the deprecated body `{"error": {"rate_reset": x}}`.
    """
    lowered = _lower_keys(headers)
    candidates = (
        _reset_of(_parse_combined(lowered.get("ratelimit"))),
        _retry_after_sec(lowered.get("retry-after"), now_sec),
        _reset_of(_parse_separate(lowered)),
        _body_rate_reset(body),
    )
    return next((max(c, 0.0) for c in candidates if c is not None), None)


def backoff_sec(attempt: int, *, base_sec: float, cap_sec: float, rand: float) -> float:
    """Exponential backoff with full jitter: rand x min(cap, base x 2^(attempt-1)).

    `attempt` is the 1-based number of the attempt that just failed; `rand` is in [0, 1).
    """
    exponent = min(max(attempt - 1, 0), 64)  # 2.0**1024 overflows; the cap applies long before
    return min(cap_sec, base_sec * 2.0**exponent) * rand


def classify(
    *,
    status: int | None,
    method: str,
    attempt: int,
    max_attempts: int,
    wait_sec: float | None,
    max_inline_wait_sec: float,
    rand: float,
    base_sec: float,
    cap_sec: float,
) -> Decision:
    """What to do after attempt number `attempt` (1-based) ended with `status`.

    `status` None means no response (timeout or connection error); `wait_sec` is what a 429
    asked for (rate_limit_wait_sec); `rand` in [0, 1) drives the jitter.
    """
    kind = _kind_of(status)
    if kind == "success":
        return Success()
    if kind == "not_found":
        return NotFound()
    if kind == "permanent":
        return Permanent(f"status {status} will not change on repeating")
    if kind == "rate_limited":
        return _after_rate_limit(
            wait_sec=wait_sec,
            has_attempts_left=attempt < max_attempts,
            max_inline_wait_sec=max_inline_wait_sec,
            rand=rand,
        )
    if kind == "retry" and attempt < max_attempts and method.upper() in IDEMPOTENT_METHODS:
        return RetryIn(backoff_sec(attempt, base_sec=base_sec, cap_sec=cap_sec, rand=rand))
    what = "no response" if status is None else f"status {status}"
    return Transient(f"{what} after {attempt} attempt(s)")


def _kind_of(status: int | None) -> _Kind:
    if status is None:
        return "retry"  # no response: a timeout or a broken connection
    kind = _KIND_BY_STATUS.get(status)
    if kind is not None:
        return kind
    if status < 300:
        return "success"
    return "permanent" if status < 500 else "transient"


def _after_rate_limit(
    *, wait_sec: float | None, has_attempts_left: bool, max_inline_wait_sec: float, rand: float
) -> Decision:
    # A 429 was not processed, so repeating it is safe whatever the method.
    wait = RATE_LIMIT_FALLBACK_WAIT_SEC if wait_sec is None else max(wait_sec, 0.0)
    if has_attempts_left and wait <= max_inline_wait_sec:
        return RetryIn(wait + rand * RATE_LIMIT_JITTER_SEC)
    return RateLimited(wait)


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _parse_combined(value: str | None) -> RateLimitInfo | None:
    if not value:
        return None
    parts: dict[str, str] = {}
    for item in re.split(r"[,;]", value):
        name, sep, raw = item.partition("=")
        if sep:
            parts[name.strip().lower()] = raw.strip().strip('"')
    return _info(parts.get("limit"), parts.get("remaining"), parts.get("reset"))


def _parse_separate(lowered: Mapping[str, str]) -> RateLimitInfo | None:
    for prefix in _SEPARATE_PREFIXES:
        info = _info(
            lowered.get(prefix + "limit"),
            lowered.get(prefix + "remaining"),
            lowered.get(prefix + "reset"),
        )
        if info is not None:
            return info
    return None


def _info(limit: str | None, remaining: str | None, reset: str | None) -> RateLimitInfo | None:
    info = RateLimitInfo(limit=_int(limit), remaining=_int(remaining), reset_sec=_number(reset))
    if info == RateLimitInfo(None, None, None):
        return None
    return info


def _reset_of(info: RateLimitInfo | None) -> float | None:
    return None if info is None else info.reset_sec


def _retry_after_sec(value: str | None, now_sec: float | None) -> float | None:
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None or now_sec is None:
        return seconds
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return moment.timestamp() - now_sec


def _body_rate_reset(body: object) -> float | None:
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    error = body.get("error") if isinstance(body, Mapping) else None
    reset = error.get("rate_reset") if isinstance(error, Mapping) else None
    if isinstance(reset, bool) or not isinstance(reset, int | float | str):
        return None
    return _number(str(reset))


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _int(text: str | None) -> int | None:
    number = _number(text)
    return None if number is None else int(number)
