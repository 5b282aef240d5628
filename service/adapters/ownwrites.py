"""Recognising the events our own writes cause, so they change nothing (no loops).

Close tags every event caused through an API key with that key's `api_key_id`, but no
endpoint tells a key its own id (`GET /me/` names the user, not the key). So before each
write we leave a receipt (opportunity, fields, values); the first event with an api_key_id
whose changes match a receipt teaches us our key's id, kept in Redis for every process.
From then on any event with that id is ours, receipt or not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import redis

from service.events import Event

log = logging.getLogger("dealkeeper.ownwrites")
KNOWN_KEY = "dk:own:api_key_ids"
RECEIPT_PREFIX = "dk:own:receipt:"
MAX_RECEIPTS_PER_OPPORTUNITY = 10


def written_field(key: str) -> str:
    """The opportunity field a PUT body key changes (`custom.cf_x.add` -> `custom.cf_x`)."""
    for suffix in (".add", ".remove"):
        if key.startswith("custom.") and key.endswith(suffix):
            return key.removesuffix(suffix)
    return "status_id" if key == "status" else key


def matches_receipt(update: Mapping[str, Any], event: Event) -> bool:
    """True when the event shows exactly the changes this update made."""
    changed = set(event.changed_fields) | set(event.previous_data)
    state = event.data
    for key, value in update.items():
        field = written_field(key)
        if field not in changed:
            return False
        current = state.get(field)
        if key.endswith(".add") and not (isinstance(current, list) and value in current):
            return False
        if key.endswith(".remove") and isinstance(current, list) and value in current:
            return False
        if field == key and current != value:
            return False
    return bool(update)


class OwnWrites:
    """Receipts of our writes and the api_key_ids learnt from them."""

    def __init__(self, connection: redis.Redis, *, receipt_ttl_sec: int) -> None:
        self.connection = connection
        self.receipt_ttl_sec = receipt_ttl_sec

    def expect(self, opportunity_id: str, update: Mapping[str, Any]) -> None:
        """Leave a receipt before writing, so even a fast echo of the write is recognised."""
        key = RECEIPT_PREFIX + opportunity_id
        with self.connection.pipeline() as pipe:
            pipe.lpush(key, json.dumps(dict(update), default=str))
            pipe.ltrim(key, 0, MAX_RECEIPTS_PER_OPPORTUNITY - 1)
            pipe.expire(key, self.receipt_ttl_sec)
            pipe.execute()

    def known_key_ids(self) -> frozenset[str]:
        return frozenset(_text(m) for m in self.connection.smembers(KNOWN_KEY))

    def is_own(self, event: Event) -> bool:
        """True when our own API key caused the event."""
        if not event.api_key_id:
            return False
        if self.connection.sismember(KNOWN_KEY, event.api_key_id):
            return True
        receipts = self.connection.lrange(RECEIPT_PREFIX + event.object_id, 0, -1)
        if any(matches_receipt(json.loads(r), event) for r in receipts):
            self.connection.sadd(KNOWN_KEY, event.api_key_id)
            log.info("own_api_key_learned", extra={"api_key_id": event.api_key_id})
            return True
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
