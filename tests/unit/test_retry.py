"""The pure retry policy: rate-limit headers, the wait a 429 asks for, backoff, classify."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.retry import (
    RATE_LIMIT_FALLBACK_WAIT_SEC,
    RATE_LIMIT_JITTER_SEC,
    NotFound,
    Permanent,
    RateLimited,
    RateLimitInfo,
    RetryIn,
    Success,
    Transient,
    backoff_sec,
    classify,
    parse_rate_limit,
    rate_limit_wait_sec,
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ratelimit": "limit=100, remaining=50, reset=5"}, RateLimitInfo(100, 50, 5.0)),
        ({"RateLimit": "limit=100, remaining=0, reset=2.5"}, RateLimitInfo(100, 0, 2.5)),
        ({"ratelimit": "reset=0.125,limit=20 ,  remaining=3"}, RateLimitInfo(20, 3, 0.125)),
        ({"ratelimit": "limit=20; remaining=3; reset=1"}, RateLimitInfo(20, 3, 1.0)),
        ({"ratelimit": "remaining=7"}, RateLimitInfo(None, 7, None)),
        ({"ratelimit": "limit=20, remaining=x, reset=0.5"}, RateLimitInfo(20, None, 0.5)),
        (
            {
                "X-Rate-Limit-Limit": "60",
                "X-Rate-Limit-Remaining": "1",
                "X-Rate-Limit-Reset": "0.75",
            },
            RateLimitInfo(60, 1, 0.75),
        ),
        ({"ratelimit-reset": "3"}, RateLimitInfo(None, None, 3.0)),
        ({"content-type": "application/json"}, None),
        ({"ratelimit": "nonsense"}, None),
    ],
)
def test_parse_rate_limit_reads_combined_and_legacy_headers(
    headers: dict[str, str], expected: RateLimitInfo | None
) -> None:
    """Any case, order, spacing or separator; decimals; missing parts are None."""
    assert expected == parse_rate_limit(headers)


def test_parse_rate_limit_prefers_the_combined_header_over_legacy_ones() -> None:
    """The `ratelimit` header replaced the x-rate-limit-* ones, so it wins when both come."""
    headers = {"ratelimit": "limit=10, remaining=9, reset=1.5", "x-rate-limit-reset": "30"}
    assert RateLimitInfo(10, 9, 1.5) == parse_rate_limit(headers)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"ratelimit": "limit=1, remaining=0, reset=0.35", "retry-after": "1"}, None, 0.35),
        ({"retry-after": "4"}, {"error": {"rate_reset": 3.2}}, 4.0),
        ({"retry-after": "soon"}, {"error": {"rate_reset": 3.2}}, 3.2),
        ({"x-rate-limit-reset": "2.5"}, None, 2.5),
        ({"retry-after": "2", "x-rate-limit-reset": "9"}, None, 2.0),
        ({}, {"error": {"rate_reset": 1.5, "message": "API call count exceeded"}}, 1.5),
        ({}, '{"error": {"rate_reset": "0.5"}}', 0.5),
        ({}, b'{"error": {"rate_reset": 0.25}}', 0.25),
        ({"ratelimit": "limit=1, remaining=0, reset=-2"}, None, 0.0),
        ({}, {"error": "Unauthorized"}, None),
        ({}, {"error": {"rate_reset": True}}, None),
        ({}, "not json", None),
        ({}, None, None),
    ],
)
def test_rate_limit_wait_sec_follows_closes_order_of_precision(
    headers: dict[str, str], body: Any, expected: float | None
) -> None:
    """ratelimit reset, then retry-after, then the separate reset headers, then the body."""
    assert expected == rate_limit_wait_sec(headers, body)


def test_rate_limit_wait_sec_reads_a_retry_after_http_date_against_now() -> None:
    """Retry-After may be an HTTP date: the wait is its distance from the given now."""
    now_sec = 1_780_000_000.0  # 2026-05-28T20:26:40Z
    headers = {"retry-after": "Thu, 28 May 2026 20:26:43 GMT"}
    assert 3.0 == rate_limit_wait_sec(headers, None, now_sec=now_sec)


def test_rate_limit_wait_sec_skips_an_http_date_without_now() -> None:
    """Without the current time a date cannot become seconds, so the next source is used."""
    headers = {"retry-after": "Thu, 28 May 2026 20:26:43 GMT"}
    assert 1.5 == rate_limit_wait_sec(headers, {"error": {"rate_reset": 1.5}})


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 0.0, 0.0),
        (1, 0.5, 0.25),
        (2, 0.5, 0.5),
        (3, 0.999, 1.998),
        (5, 0.5, 4.0),
        (6, 0.5, 4.0),  # 0.5 * 2**5 = 16 is capped at 8
        (1000, 0.5, 4.0),  # no overflow for absurd attempt numbers
    ],
)
def test_backoff_sec_is_full_jitter_under_an_exponential_cap(
    attempt: int, rand: float, expected: float
) -> None:
    """rand x min(cap, base x 2^(attempt-1)), with base 0.5 and cap 8."""
    assert expected == pytest.approx(backoff_sec(attempt, base_sec=0.5, cap_sec=8.0, rand=rand))


def test_backoff_sec_stays_within_bounds_for_every_rand() -> None:
    """Whatever the jitter, the wait is in [0, min(cap, base x 2^(attempt-1)))."""
    for attempt in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        waits = [backoff_sec(attempt, base_sec=0.5, cap_sec=8.0, rand=r / 100) for r in range(100)]
        assert (True, True) == (min(waits) >= 0.0, max(waits) < ceiling)


def _classify(status: int | None, method: str = "PUT", **overrides: Any) -> object:
    arguments: dict[str, Any] = {
        "status": status,
        "method": method,
        "attempt": 1,
        "max_attempts": 4,
        "wait_sec": None,
        "max_inline_wait_sec": 5.0,
        "rand": 0.5,
        "base_sec": 0.5,
        "cap_sec": 8.0,
    }
    arguments.update(overrides)
    return classify(**arguments)


@pytest.mark.parametrize(
    ("status", "method", "overrides", "expected"),
    [
        (200, "PUT", {}, Success()),
        (204, "DELETE", {}, Success()),
        # Redirects are not followed (they could carry the API key elsewhere) nor success.
        (301, "PUT", {}, Permanent("status 301 will not change on repeating")),
        (307, "GET", {}, Permanent("status 307 will not change on repeating")),
        (404, "GET", {}, NotFound()),
        (400, "PUT", {}, Permanent("status 400 will not change on repeating")),
        (401, "GET", {}, Permanent("status 401 will not change on repeating")),
        (403, "PUT", {}, Permanent("status 403 will not change on repeating")),
        (422, "PUT", {}, Permanent("status 422 will not change on repeating")),
        (None, "GET", {}, RetryIn(0.25)),
        (502, "PUT", {"attempt": 2}, RetryIn(0.5)),
        (503, "DELETE", {"attempt": 3}, RetryIn(1.0)),
        (504, "HEAD", {}, RetryIn(0.25)),
        (503, "POST", {}, Transient("status 503 after 1 attempt(s)")),
        (None, "POST", {}, Transient("no response after 1 attempt(s)")),
        (502, "PUT", {"attempt": 4}, Transient("status 502 after 4 attempt(s)")),
        (None, "GET", {"attempt": 4}, Transient("no response after 4 attempt(s)")),
        (500, "GET", {}, Transient("status 500 after 1 attempt(s)")),
        (501, "GET", {}, Transient("status 501 after 1 attempt(s)")),
        (429, "PUT", {"wait_sec": 0.35}, RetryIn(0.35 + 0.5 * RATE_LIMIT_JITTER_SEC)),
        (429, "POST", {"wait_sec": 5.0}, RetryIn(5.0 + 0.5 * RATE_LIMIT_JITTER_SEC)),
        (429, "PUT", {"wait_sec": 5.01}, RateLimited(5.01)),
        (429, "PUT", {"wait_sec": 0.35, "attempt": 4}, RateLimited(0.35)),
        (429, "PUT", {"wait_sec": -1.0, "rand": 0.0}, RetryIn(0.0)),
        (429, "GET", {"rand": 0.0}, RetryIn(RATE_LIMIT_FALLBACK_WAIT_SEC)),
    ],
)
def test_classify_follows_the_table(
    status: int | None, method: str, overrides: dict[str, Any], expected: object
) -> None:
    """Each status, method and attempt count lands on its documented decision."""
    assert expected == _classify(status, method, **overrides)


def test_classify_treats_method_names_case_insensitively() -> None:
    """`put` is as idempotent as `PUT`."""
    assert RetryIn(0.25) == _classify(503, "put")
