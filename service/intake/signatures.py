"""Close's webhook signatures: HMAC-SHA256, keyed with the hex-decoded signature_key, over
the `close-sig-timestamp` string followed by the raw body. Pure: the time comes in."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from service.config.errors import WebhookRejectedError

HASH_HEADER = "close-sig-hash"
TIMESTAMP_HEADER = "close-sig-timestamp"
# A timestamp ahead of now can only be clock skew, never a retry: it gets five minutes
# (or the whole window, if that is set shorter), however long the window into the past is.
FUTURE_SKEW_SEC = 300


def sign(body: bytes, *, key: bytes, timestamp: str) -> str:
    """The hex digest Close puts in close-sig-hash."""
    return hmac.new(key, timestamp.encode() + body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, *, key: bytes, timestamp: int) -> dict[str, str]:
    """Both signature headers for a body, as Close sends them."""
    stamp = str(timestamp)
    return {HASH_HEADER: sign(body, key=key, timestamp=stamp), TIMESTAMP_HEADER: stamp}


def verify(
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    keys: Sequence[bytes],
    now: float,
    tolerance_sec: int,
) -> None:
    """Accept the body or raise WebhookRejectedError (401): unsigned, wrongly signed, stale.

    `tolerance_sec` is how old a signature may be: Close does not say that a retry is signed
    afresh, so it covers Close's 72 hours of retries; replaying a delivery inside it is
    harmless because the event-id dedupe (which outlives the window) answers `duplicate`.
    """
    if not signature or not timestamp:
        raise WebhookRejectedError("missing close-sig-hash or close-sig-timestamp", status=401)
    if not keys:
        raise WebhookRejectedError("no CLOSE_WEBHOOK_SECRET is configured", status=401)
    try:
        moment = int(timestamp)
    except ValueError:
        raise WebhookRejectedError("close-sig-timestamp is not a number", status=401) from None
    # Check every key even after a match, so the time taken does not tell which key matched.
    given = signature.strip().lower().encode("utf-8", "replace")
    matched = False
    for key in keys:
        expected = sign(body, key=key, timestamp=timestamp).encode()
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise WebhookRejectedError("signature does not match", status=401)
    age = now - moment
    if age > tolerance_sec or -age > min(tolerance_sec, FUTURE_SKEW_SEC):
        allowed = tolerance_sec if age > 0 else min(tolerance_sec, FUTURE_SKEW_SEC)
        raise WebhookRejectedError(
            f"close-sig-timestamp is {int(age)}s away from now (at most {allowed}s allowed)",
            status=401,
        )
