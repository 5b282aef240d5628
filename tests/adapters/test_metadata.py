"""MetadataCache: TTL, rate-limited forced refresh, offline None, Close JSON -> model types."""

from __future__ import annotations

from typing import Any

import pytest

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.adapters.metadata import MetadataCache, custom_field_from_close, status_from_close
from service.config.errors import CloseServerError
from service.core.rules.model import CustomField, Metadata, Status

ACTIVE = {"id": "stat_1", "label": "Active", "type": "active", "pipeline_id": "pipe_1"}
WON = {"id": "stat_2", "label": "Won", "type": "won", "pipeline_id": "pipe_1"}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingClose:
    """A CloseAPI stand-in that counts metadata fetches and can be told to fail."""

    def __init__(self) -> None:
        self.fetches = 0
        self.statuses: list[dict[str, Any]] = [ACTIVE]
        self.error: Exception | None = None

    def get_me(self) -> dict[str, Any]:
        return {}

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        return {}

    def update_opportunity(
        self, opportunity_id: str, update: Any, *, tz_offset_hours: Any
    ) -> dict[str, Any]:
        return {}

    def list_opportunity_statuses(self) -> list[dict[str, Any]]:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        return list(self.statuses)

    def get_opportunity_custom_fields(self) -> list[dict[str, Any]]:
        return []

    def request_json(
        self, method: str, path: str, *, params: Any = None, body: Any = None
    ) -> dict[str, Any]:
        return {}


@pytest.fixture
def clock() -> Clock:
    """Time starts at 0."""
    return Clock()


@pytest.fixture
def close() -> RecordingClose:
    """Close's metadata, counted."""
    return RecordingClose()


@pytest.fixture
def cache(close: RecordingClose, clock: Clock) -> MetadataCache:
    """TTL 300 s, forced refreshes at most every 10 s."""
    return MetadataCache(close, ttl_sec=300.0, min_refresh_interval_sec=10.0, clock=clock)


def test_metadata_cache_without_a_client_is_none() -> None:
    """Offline (dry run without a key) there is no metadata, fetched or refreshed."""
    cache = MetadataCache(None)
    assert (None, None) == (cache.get(), cache.refresh())


def test_metadata_cache_fetches_once_within_the_ttl(
    cache: MetadataCache, close: RecordingClose, clock: Clock
) -> None:
    """Every get() within the TTL is served from the first fetch."""
    first = cache.get()
    clock.now = 299.0
    assert (Metadata(statuses=(Status("stat_1", "Active", "active", "pipe_1"),)), 1) == (
        cache.get(),
        close.fetches,
    )
    assert first is cache.get()


def test_metadata_cache_fetches_again_once_the_ttl_passed(
    cache: MetadataCache, close: RecordingClose, clock: Clock
) -> None:
    """At the TTL the next get() fetches, and sees what changed in Close."""
    cache.get()
    close.statuses = [ACTIVE, WON]
    clock.now = 300.0
    metadata = cache.get()
    assert (2, ["Active", "Won"]) == (
        close.fetches,
        [s.label for s in metadata.statuses] if metadata else [],
    )


def test_metadata_cache_refresh_is_rate_limited(
    cache: MetadataCache, close: RecordingClose, clock: Clock
) -> None:
    """Forced refreshes reach Close at most once per min_refresh_interval_sec."""
    counts = []
    for moment in (0.0, 5.0, 10.0, 15.0, 19.9, 20.0):
        clock.now = moment
        cache.refresh()
        counts.append(close.fetches)
    assert [1, 1, 2, 2, 2, 3] == counts


def test_metadata_cache_refresh_returns_the_cached_metadata_when_too_soon(
    cache: MetadataCache, close: RecordingClose, clock: Clock
) -> None:
    """A refresh refused for being too soon still answers with what is cached."""
    first = cache.get()
    close.statuses = [ACTIVE, WON]
    clock.now = 1.0
    assert first is cache.refresh()


def test_metadata_cache_serves_stale_metadata_while_close_fails(
    cache: MetadataCache,
    close: RecordingClose,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed refetch keeps the old metadata, logs a warning, and is not retried at once."""
    first = cache.get()
    close.error = CloseServerError(method="GET", path="status/opportunity/", status=503)
    served = []
    for moment in (301.0, 305.0, 311.0):
        clock.now = moment
        served.append(cache.get() is first)
    warnings = [r.levelname for r in caplog.records if r.getMessage() == "metadata_refresh_failed"]
    assert ([True, True, True], 3, ["WARNING", "WARNING"]) == (served, close.fetches, warnings)


def test_metadata_cache_raises_when_the_first_fetch_fails(
    cache: MetadataCache, close: RecordingClose
) -> None:
    """With nothing cached there is nothing to fall back on: the Close error surfaces."""
    close.error = CloseServerError(method="GET", path="status/opportunity/", status=503)
    with pytest.raises(CloseServerError):
        cache.get()


def test_metadata_cache_reads_fake_close_into_model_types() -> None:
    """Statuses (their `type`) and custom fields (choices as a tuple, else None) convert."""
    with FakeClose() as fake:
        segment = fake.add_custom_field(
            "Segment", type="choices", accepts_multiple_values=True, choices=["A", "B"]
        )
        source = fake.add_custom_field("Source")
        with CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake.url) as client:
            metadata = MetadataCache(client).get()
        won = fake.status_id("Won")
        pipeline = fake.default_pipeline_id
    assert metadata is not None
    assert (
        Status(won, "Won", "won", pipeline),
        (
            CustomField(segment, "Segment", "choices", True, ("A", "B")),
            CustomField(source, "Source", "text", False, None),
        ),
    ) == (metadata.statuses[1], metadata.custom_fields)


def test_status_from_close_accepts_status_type_where_type_is_missing() -> None:
    """Close's doc intro says status_type; real answers say type. Both are read."""
    raw = {"id": "stat_9", "label": "Lost", "status_type": "lost"}
    assert Status("stat_9", "Lost", "lost", None) == status_from_close(raw)


def test_custom_field_from_close_defaults_missing_keys() -> None:
    """A field without type or multi-value flag is a single-valued text field."""
    assert CustomField("cf_1", "Note", "text") == custom_field_from_close(
        {"id": "cf_1", "name": "Note"}
    )


def test_metadata_entries_without_an_id_or_name_are_left_out_and_said(
    close: RecordingClose, cache: MetadataCache, caplog: pytest.LogCaptureFixture
) -> None:
    """Close lists something new or broken: the usable entries are read, the rest skipped
    with one WARNING (a rule naming them then shows as unknown, never guessed)."""
    paused = {"id": "stat_3", "label": "Paused", "type": "paused", "pipeline_id": 7}
    close.statuses = [ACTIVE, {"label": "No id"}, {"id": "stat_4", "label": None}, paused]

    metadata = cache.get()

    assert metadata is not None
    assert [
        Status("stat_1", "Active", "active", "pipe_1"),
        Status("stat_3", "Paused", "paused"),
    ] == (list(metadata.statuses))
    [line] = [r for r in caplog.records if r.getMessage() == "metadata_entries_skipped"]
    assert ("status", 2) == (line.__dict__["what"], line.__dict__["skipped"])
