"""What dealkeeper keeps in Redis, by kind, in bytes as Redis counts them (MEMORY USAGE).

`python3 dev.py bench redis` and the footprint tests read it to size Redis: the kinds an
event leaves behind (its dedupe record, its history, its job while queued or parked) are
told apart from what the whole deployment shares (counters, rate-limit windows, workers).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from service.adapters.history import HISTORY_INDEX, HISTORY_PREFIX
from service.adapters.locks import LOCK_PREFIX
from service.adapters.loopguard import PREFIX as LOOP_PREFIX
from service.adapters.ordering import PENDING_PREFIX
from service.adapters.ownwrites import RECEIPT_PREFIX
from service.adapters.queue import DEDUPE_PREFIX

# Checked in order, the first prefix that matches names the kind; "shared" is the rest.
KINDS: tuple[tuple[str, str], ...] = (
    (DEDUPE_PREFIX, "dedupe"),
    (HISTORY_PREFIX, "history"),
    (HISTORY_INDEX, "history"),
    ("rq:job:", "jobs"),
    ("rq:results:", "jobs"),
    ("rq:execution", "jobs"),
    ("rq:failed:", "jobs"),
    ("rq:finished:", "jobs"),
    ("rq:scheduled:", "jobs"),
    ("rq:queue:", "jobs"),
    (RECEIPT_PREFIX, "own writes"),
    (LOOP_PREFIX, "loop guard"),
    (PENDING_PREFIX, "ordering"),
    (LOCK_PREFIX, "locks"),
)
_BATCH = 500


def kind_of(key: str) -> str:
    """The kind a key belongs to ("shared" when it is no event's)."""
    return next((kind for prefix, kind in KINDS if key.startswith(prefix)), "shared")


def bytes_by_kind(connection: redis.Redis) -> dict[str, int]:
    """Bytes per kind over every key of the database (SCAN, MEMORY USAGE pipelined)."""
    totals: dict[str, int] = {}
    for keys, sizes in _sized(connection):
        for key, size in zip(keys, sizes, strict=True):
            kind = kind_of(key.decode(errors="replace"))
            totals[kind] = totals.get(kind, 0) + int(size or 0)
    return totals


def _sized(connection: redis.Redis) -> Iterable[tuple[list[bytes], list[int | None]]]:
    keys: list[bytes] = []
    for key in connection.scan_iter(count=_BATCH):
        keys.append(key)
        if len(keys) == _BATCH:
            yield keys, _sizes(connection, keys)
            keys = []
    if keys:
        yield keys, _sizes(connection, keys)


def _sizes(connection: redis.Redis, keys: list[bytes]) -> list[int | None]:
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)  # 0: every element of a big key is counted
        return list(pipe.execute())
