"""Close's opportunity statuses and custom fields, cached, handed to the engine as Metadata.

Offline (dry-run without an API key) there is no client and the cache answers None, so the
engine works from the names written in the rules alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from service.adapters.close import CloseAPI
from service.config import defaults
from service.config.errors import CloseAPIError
from service.core.rules.model import CustomField, Metadata, Status

log = logging.getLogger("dealkeeper.metadata")

# A rule naming a field that truly does not exist asks for a refresh on every event;
# this keeps those requests from hammering Close.
METADATA_MIN_REFRESH_INTERVAL_SEC = 10.0


class MetadataCache:
    """Statuses and custom fields, fetched once, kept `ttl_sec`, refreshed on demand."""

    def __init__(
        self,
        client: CloseAPI | None,
        *,
        ttl_sec: float = defaults.METADATA_TTL_SEC,
        min_refresh_interval_sec: float = METADATA_MIN_REFRESH_INTERVAL_SEC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_sec = ttl_sec
        self._min_refresh_interval_sec = min_refresh_interval_sec
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: Metadata | None = None
        self._fetched_at = 0.0
        self._attempted_at = 0.0

    def get(self) -> Metadata | None:
        """The cached metadata, fetched when missing or older than the TTL; None offline."""
        with self._lock:
            if self._client is not None and self._is_due(max_age_sec=self._ttl_sec):
                self._fetch(self._client)
            return self._metadata

    def refresh(self) -> Metadata | None:
        """Fetch again now, unless the last fetch was under min_refresh_interval_sec ago."""
        with self._lock:
            if self._client is not None and self._is_due(max_age_sec=0.0):
                self._fetch(self._client)
            return self._metadata

    def _is_due(self, *, max_age_sec: float) -> bool:
        if self._metadata is None:
            return True
        now = self._clock()
        # Also after a failed attempt: a Close outage must not turn every event into a fetch.
        recently_tried = now - self._attempted_at < self._min_refresh_interval_sec
        return now - self._fetched_at >= max_age_sec and not recently_tried

    def _fetch(self, client: CloseAPI) -> None:
        self._attempted_at = self._clock()
        try:
            fresh = fetch_metadata(client)
        except CloseAPIError as exc:
            if self._metadata is None:
                raise
            # Stale statuses beat none: rules keep running while Close is unwell.
            log.warning("metadata_refresh_failed", extra={"error": str(exc)})
            return
        self._metadata, self._fetched_at = fresh, self._attempted_at


def fetch_metadata(client: CloseAPI) -> Metadata:
    """Statuses and custom fields as Close lists them now. An entry without a text id and
    name (label) is left out, with a WARNING: no rule can name it, and a rule naming what
    it might have been shows as unknown rather than write on a guess."""
    statuses = _usable(client.list_opportunity_statuses(), "status", ("id", "label"))
    fields = _usable(client.get_opportunity_custom_fields(), "custom field", ("id", "name"))
    return Metadata(
        statuses=tuple(status_from_close(raw) for raw in statuses),
        custom_fields=tuple(custom_field_from_close(raw) for raw in fields),
    )


def _usable(entries: list[Any], what: str, keys: tuple[str, ...]) -> list[Mapping[str, Any]]:
    usable: list[Mapping[str, Any]] = [
        raw
        for raw in entries
        if isinstance(raw, Mapping) and all(isinstance(raw.get(k), str) and raw[k] for k in keys)
    ]
    if len(usable) < len(entries):
        log.warning(
            "metadata_entries_skipped",
            extra={"what": what, "skipped": len(entries) - len(usable), "needs": list(keys)},
        )
    return usable


def status_from_close(raw: Mapping[str, Any]) -> Status:
    """A status of `GET status/opportunity/`; its kind is `type` there, not `status_type`.
    A kind Close adds one day is kept as it is: rules compare it as text."""
    pipeline_id = raw.get("pipeline_id")
    return Status(
        id=str(raw["id"]),
        label=str(raw["label"]),
        type=str(raw.get("type") or raw.get("status_type") or ""),
        pipeline_id=pipeline_id if isinstance(pipeline_id, str) else None,
    )


def custom_field_from_close(raw: Mapping[str, Any]) -> CustomField:
    """A field of `GET custom_field_schema/opportunity/` (or `custom_field/opportunity/`)."""
    choices = raw.get("choices")
    return CustomField(
        id=str(raw["id"]),
        name=str(raw["name"]),
        type=str(raw.get("type") or "text"),
        accepts_multiple_values=bool(raw.get("accepts_multiple_values")),
        choices=tuple(str(c) for c in choices) if isinstance(choices, list) else None,
    )
