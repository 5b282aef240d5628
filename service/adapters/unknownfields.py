"""The names rules use that Close no longer knows, as the workers last found them.

A custom field deleted or renamed in Close, or a status label gone, stops the rules that
use it (the engine never guesses): workers find this when their metadata or rules change
(service/core/rules/unknown.py) and keep the list in Redis, so every process shows the same:
`dealkeeper status`, /readyz's detail and the `dealkeeper_rule_fields_unknown` metric.
Whoever first sees the list change says so in one log line: a WARNING naming each rule and
field, or an INFO when all are known again; not one line per event.
"""

from __future__ import annotations

import json
import logging

import redis

from service.core.rules.model import Metadata, RuleSet
from service.core.rules.unknown import UnknownField, unknown_fields

log = logging.getLogger("dealkeeper.metadata")

UNKNOWN_FIELDS_KEY = "dk:rules:unknown_fields"
# Workers write it whenever their metadata is fetched (every 5 minutes), so it outlives
# them by hours only: a list no running worker confirms goes away on its own.
UNKNOWN_FIELDS_TTL_SEC = 6 * 3600


class UnknownFieldsWatch:
    """Checks the rules against the metadata when either changes, and records the result."""

    def __init__(self, connection: redis.Redis) -> None:
        self._connection = connection
        # The rules digest and the metadata last checked. The metadata object itself, held:
        # its id() could be reused by the next one once it is freed, and that change missed.
        self._checked: tuple[str, Metadata] | None = None

    def check(self, ruleset: RuleSet, metadata: Metadata | None) -> None:
        """Record what the rules use that `metadata` lacks, once per rules or metadata."""
        if metadata is None:
            return  # offline: names are taken as written, nothing to check them against
        last = self._checked
        if last is not None and last[0] == ruleset.digest and last[1] is metadata:
            return
        found = unknown_fields(ruleset, metadata)
        text = json.dumps([entry.to_dict() for entry in found], sort_keys=True)
        replaced = self._connection.set(
            UNKNOWN_FIELDS_KEY, text, ex=UNKNOWN_FIELDS_TTL_SEC, get=True
        )
        self._checked = (ruleset.digest, metadata)
        before = _decoded(replaced if isinstance(replaced, bytes | str) else None)
        if before != found:
            _say(found, before=before)


def read_unknown_fields(connection: redis.Redis) -> tuple[UnknownField, ...]:
    """The list the workers last recorded; empty when none (or none recorded)."""
    return _decoded(connection.get(UNKNOWN_FIELDS_KEY))


def _decoded(raw: bytes | str | None) -> tuple[UnknownField, ...]:
    if raw is None:
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    entries = (UnknownField.from_dict(item) for item in items) if isinstance(items, list) else ()
    return tuple(entry for entry in entries if entry is not None)


def _say(found: tuple[UnknownField, ...], *, before: tuple[UnknownField, ...]) -> None:
    if found:
        log.warning(
            "rule_fields_unknown",
            extra={
                "unknown": [entry.to_dict() for entry in found],
                "advice": (
                    "these rules do not fire until the names are fixed: rename them in the "
                    "rules to what Close has now (dealkeeper validate --online), or restore "
                    "them in Close"
                ),
            },
        )
    elif before:
        log.info("rule_fields_known_again", extra={"rules": sorted({e.rule for e in before})})
