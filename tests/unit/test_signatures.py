"""Close's webhook signature: HMAC-SHA256 over timestamp + raw body, hex-decoded key."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from service.config.errors import WebhookRejectedError
from service.intake import signatures

KEY_HEX = "058bfb6a" * 8
KEY = bytes.fromhex(KEY_HEX)
BODY = b'{"event": {"id": "ev_1"}}'


def test_signatures_match_close_documented_algorithm() -> None:
    """The digest is what Close's documented Python example computes."""
    expected = hmac.new(
        bytearray.fromhex(KEY_HEX), ("1544271440" + BODY.decode()).encode("utf-8"), hashlib.sha256
    ).hexdigest()

    assert expected == signatures.sign(BODY, key=KEY, timestamp="1544271440")


def verify(**changes: object) -> None:
    arguments: dict[str, object] = {
        "signature": signatures.sign(BODY, key=KEY, timestamp="1000"),
        "timestamp": "1000",
        "keys": (KEY,),
        "now": 1000.0,
        "tolerance_sec": 300,
    }
    arguments.update(changes)
    signatures.verify(BODY, **arguments)  # type: ignore[arg-type]


def test_signatures_accept_a_good_signature() -> None:
    """A correct signature inside the window passes."""
    verify()


def test_signatures_accept_uppercase_hex() -> None:
    """Hex case does not matter."""
    verify(signature=signatures.sign(BODY, key=KEY, timestamp="1000").upper())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"signature": None}, "missing close-sig-hash or close-sig-timestamp"),
        ({"timestamp": ""}, "missing close-sig-hash or close-sig-timestamp"),
        ({"keys": ()}, "no CLOSE_WEBHOOK_SECRET is configured"),
        ({"signature": "é" * 64}, "signature does not match"),
        ({"now": 1301.0}, "close-sig-timestamp is 301s away from now (at most 300s allowed)"),
        ({"now": 699.0}, "close-sig-timestamp is -301s away from now (at most 300s allowed)"),
    ],
)
def test_signatures_reject_with_a_reason(changes: dict[str, object], message: str) -> None:
    """Each way of being wrong has its own 401 reason."""
    with pytest.raises(WebhookRejectedError) as caught:
        verify(**changes)

    assert (401, message) == (caught.value.status, str(caught.value))


@pytest.mark.parametrize(
    ("now", "accepted"),
    [(1000.0 + 86400, True), (1000.0 + 86401, False), (699.0, False), (700.0, True)],
)
def test_signatures_the_past_gets_the_window_the_future_five_minutes(
    now: float, accepted: bool
) -> None:
    """A day-long window accepts a day-old signature, but a timestamp from the future is
    clock skew and gets five minutes at most."""
    try:
        verify(now=now, tolerance_sec=86400)
    except WebhookRejectedError:
        assert not accepted
    else:
        assert accepted


def test_signatures_a_bad_signature_is_refused_before_the_time_is_judged() -> None:
    """A forged old request learns nothing about the window: it is just 'does not match'."""
    with pytest.raises(WebhookRejectedError) as caught:
        verify(signature="00" * 32, now=99999.0)

    assert "signature does not match" == str(caught.value)
