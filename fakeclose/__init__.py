"""dealkeeper's own fake of Close's API: a small real HTTP server on loopback.

Used by the test suite, the benchmarks and local demos. It answers Close's opportunity,
status, pipeline, custom-field, `me` and event-log endpoints with Close's patch semantics,
emits events as Close would and can deliver them as signed webhooks. Faults, delays and
rate limits can be injected; every request is recorded.

Run it alone with `python -m fakeclose --port 8765 --api-key KEY`.

Not part of the product: the wheel and the container image leave it out, and nothing in
service/ imports it (an import-linter contract). It imports nothing of the service either:
it is written from Close's documents, not from our client.
"""

from __future__ import annotations

from fakeclose.patch import PatchError
from fakeclose.server import FakeClose
from fakeclose.store import DEALKEEPER_USER_ID, HUMAN_USER_ID, MissingObjectError
from fakeclose.traffic import RecordedRequest
from fakeclose.webhooks import Delivery, sign_webhook

__all__ = [
    "DEALKEEPER_USER_ID",
    "HUMAN_USER_ID",
    "Delivery",
    "FakeClose",
    "MissingObjectError",
    "PatchError",
    "RecordedRequest",
    "sign_webhook",
]
