"""Receipts of our own writes: to recognise the events they cause (no loops), and to tell
our own earlier writes from other people's changes (service/core/reconcile.py).

Close tags every event caused through an API key with that key's `api_key_id`, but no
endpoint tells a key its own id (`GET /me/` names the user, not the key). So before each
write we leave a receipt (opportunity, fields, values, when the event it answers happened,
when we sent it); once Close has answered the write, the receipt also records when Close
took it (the `date_updated` of its answer), with the job's other bookkeeping, and, when
Close answered 200 without taking some fields, keeps only the fields it took.

An event with an api_key_id that shows exactly a receipt's changes, and nothing else, made
at that moment, teaches us our key's id, kept in Redis for every process; from then on any
event with that id is ours, receipt or not. An event that shows a receipt's changes of the
last few minutes is ours too, but teaches nothing: another integration may have made the
same change.

    dk:own:receipt:<opportunity id>   list of JSON receipts, newest first, at most 10,
                                      expiring WRITE_RECEIPT_TTL_SEC after the last write

Receipts of an opportunity are only written by the holder of its lock (service/processing/jobs.py),
so the holder's receipt is the newest until it lets go.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from service.config import defaults
from service.core.echoes import matches_receipt
from service.core.events import Event, parse_close_time
from service.core.reconcile import OwnWrite

log = logging.getLogger("dealkeeper.ownwrites")
KNOWN_KEY = "dk:own:api_key_ids"
RECEIPT_PREFIX = "dk:own:receipt:"
MAX_RECEIPTS_PER_OPPORTUNITY = 10
# Close stamps date_updated to the microsecond; a float of epoch seconds keeps it to within
# a quarter of one, so two changes a few microseconds apart are still told apart.
LANDING_MATCH_SEC = 0.000_002
# KEYS[1]: the receipts; ARGV: the receipt as written, the same with its landing. Replaces
# the newest receipt only if it is still the one written (1), else leaves all as is (0).
_LANDED = """
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LSET', KEYS[1], 0, ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Receipt:
    """One receipt as stored, with when it was written (by our clock: the echo window)."""

    write: OwnWrite
    written_at: float | None

    @classmethod
    def parse(cls, raw: bytes | str) -> Receipt | None:
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        update = data.get("update")
        if not isinstance(update, dict) or "written_at" not in data:
            # Left before receipts carried their moments (an upgrade's last 15 minutes).
            return cls(OwnWrite(data), None)
        write = OwnWrite(update, _number(data.get("event_at")), _number(data.get("landed_at")))
        return cls(write, _number(data.get("written_at")))


@dataclass(frozen=True)
class Sent:
    """The receipt of a write being sent, to record when Close took it."""

    key: str
    text: str

    def landed_on(
        self, date_updated: Any, *, taken: Mapping[str, Any] | None = None
    ) -> Callable[[Any], None] | None:
        """What records, on the job's final pipeline, that Close took the write at its
        answer's `date_updated` (None when the answer carries none: the write then counts
        as nobody's, and the people's side of the stale-write check stays safe).

        `taken`: the part of the update Close took, when it answered 200 without taking
        the rest. The receipt then keeps only that part: the echo of the write shows no
        more (an echo must show every field of a receipt to be recognised), and our own
        writes replayed onto an event (service/core/reconcile.py) must not claim a value the
        deal never held. A write Close took none of changed nothing: it landed at no
        moment, and its answer's date_updated is someone else's change.
        """
        data = json.loads(self.text)
        if taken is not None:
            data["update"] = dict(taken)
        landed = _moment(date_updated) if taken is None or taken else None
        if landed is not None:
            data["landed_at"] = landed
        elif taken is None:
            return None
        text = _dumps(data)
        return lambda pipe: pipe.eval(_LANDED, 1, self.key, self.text, text)


class OwnWrites:
    """Receipts of our writes and the api_key_ids learnt from them."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        echo_window_sec: int = defaults.WRITE_ECHO_WINDOW_SEC,
        receipt_ttl_sec: int = defaults.WRITE_RECEIPT_TTL_SEC,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.echo_window_sec = echo_window_sec  # how long a write's echo may take to come
        self.receipt_ttl_sec = max(receipt_ttl_sec, echo_window_sec)
        self._clock = clock

    def expect(self, opportunity_id: str, update: Mapping[str, Any], *, event_at: datetime) -> Sent:
        """Leave a receipt before writing, so even a fast echo of the write is recognised;
        `event_at` is when the event the write answers happened."""
        key = RECEIPT_PREFIX + opportunity_id
        text = _dumps(
            {
                "update": dict(update),
                "event_at": event_at.timestamp(),
                "written_at": round(self._clock(), 3),
            }
        )
        with self.connection.pipeline() as pipe:
            pipe.lpush(key, text)
            pipe.ltrim(key, 0, MAX_RECEIPTS_PER_OPPORTUNITY - 1)
            pipe.expire(key, self.receipt_ttl_sec)
            pipe.execute()
        return Sent(key, text)

    def read(self, opportunity_id: str) -> tuple[OwnWrite, ...]:
        """The opportunity's writes, oldest first, in a round trip of its own."""
        return self.writes_from(self.connection.lrange(RECEIPT_PREFIX + opportunity_id, 0, -1))

    def read_on(self, pipe: Any, opportunity_id: str) -> None:
        """Queue the read of the opportunity's receipts on `pipe` (one reply, for
        `writes_from`), so a job gets them with the reads it makes anyway."""
        pipe.lrange(RECEIPT_PREFIX + opportunity_id, 0, -1)

    @staticmethod
    def writes_from(reply: Any) -> tuple[OwnWrite, ...]:
        """The writes `read_on` found, oldest first (none when Redis refused the read: the
        stale-write check then protects every field changed since the event)."""
        return tuple(receipt.write for receipt in reversed(_receipts(reply)))

    def known_key_ids(self) -> frozenset[str]:
        return frozenset(_text(m) for m in self.connection.smembers(KNOWN_KEY))

    def is_own(self, event: Event) -> bool:
        """True when our own API key caused the event."""
        if not event.api_key_id:
            return False
        if self.connection.sismember(KNOWN_KEY, event.api_key_id):
            return True
        reply = self.connection.lrange(RECEIPT_PREFIX + event.object_id, 0, -1)
        # Only a write of the last few minutes can be echoed now: an older write's values
        # seen again are someone else's doing.
        since = self._clock() - self.echo_window_sec
        recent = [
            r.write for r in _receipts(reply) if r.written_at is None or r.written_at >= since
        ]
        matched = [write for write in recent if matches_receipt(write.update, event)]
        # Another integration can make the very change we just made: that event is taken
        # for our echo (harmless: what it sets already holds), but its key is learnt only
        # when the change is the one Close made at our write's moment.
        if any(_landed_as(write, event) for write in matched):
            self.connection.sadd(KNOWN_KEY, event.api_key_id)
            log.info("own_api_key_learned", extra={"api_key_id": event.api_key_id})
        return bool(matched)


def _moment(date_updated: Any) -> float | None:
    """Close's `date_updated` in epoch seconds; None when it does not read as one."""
    try:
        return parse_close_time(date_updated, what="date_updated").timestamp()
    except ValueError:
        return None


def _landed_as(write: OwnWrite, event: Event) -> bool:
    """True when the event's change is the one Close made when it took our write."""
    if write.landed_at is None:
        return False
    try:
        changed_at = parse_close_time(event.data.get("date_updated"), what="date_updated")
    except ValueError:
        return False
    return abs(changed_at.timestamp() - write.landed_at) < LANDING_MATCH_SEC


def _receipts(reply: Any) -> list[Receipt]:
    """The receipts in an LRANGE reply, newest first (none when Redis refused the read)."""
    if not isinstance(reply, list):
        return []
    return [r for r in map(Receipt.parse, reply) if r is not None]


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
