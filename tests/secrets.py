"""Every form a secret can take in text, for tests that look for leaks.

Written apart from the product's own redaction (service/observability/logs.py), so a form
the product forgets is still looked for here.
"""

from __future__ import annotations

import base64
import binascii
import json


def forms(secret: str) -> set[str]:
    """The secret as text, as JSON, as a Basic auth header (a key is the user name), in
    base64; and for a hex key, its bytes as Python shows them and in base64 too."""
    found = {secret, json.dumps(secret)[1:-1]}
    found |= _base64_forms(secret.encode())
    found.add(base64.b64encode(f"{secret}:".encode()).decode())  # HTTP Basic, no password
    try:
        raw = bytes.fromhex(secret)
    except ValueError:
        return found
    shown = repr(raw)
    found |= {shown, shown[2:-1], json.dumps(shown)[1:-1], binascii.hexlify(raw).decode().upper()}
    return found | _base64_forms(raw)


def _base64_forms(raw: bytes) -> set[str]:
    return {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}


def leaked(text: str, secrets: tuple[str, ...]) -> list[str]:
    """The forms of `secrets` found in `text`."""
    return sorted(form for secret in secrets for form in forms(secret) if form in text)
