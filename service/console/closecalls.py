"""Close calls a console page makes on an explicit request (explain, a sweep's dry run), and
the rules in force as this web process sees them.

The client keeps the workers' shared pace (adapters/ratelimit.py), so a person clicking
never pushes a worker's write into a 429, and waits out at most a few seconds of rate limit:
a page must answer, not hang.
"""

from __future__ import annotations

from service.adapters.close import CloseClient
from service.adapters.ratelimit import SharedRateLimiter
from service.console.context import Console

MAX_INLINE_WAIT_SEC = 5.0
NO_KEY = (
    "CLOSE_API_KEY is not set (dealkeeper runs in dry-run mode), so the console cannot read "
    "from Close"
)


def close_client(the: Console) -> CloseClient | None:
    """A client for CLOSE_API_KEY on the shared pace; None without a key."""
    settings = the.settings
    if not settings.close_api_key:
        return None
    throttle = SharedRateLimiter(
        the.connection,
        rate_per_sec=settings.tuning.close_rate_limit_per_sec,
        max_inline_wait_sec=MAX_INLINE_WAIT_SEC,
    )
    return CloseClient.from_settings(
        settings, max_inline_wait_sec=MAX_INLINE_WAIT_SEC, throttle=throttle
    )
