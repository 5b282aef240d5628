"""Close calls, lag and rules in Redis-backed metrics: recorded anywhere, shown by /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from fakeclose import FakeClose
from service.adapters.close import CloseClient, Exchange
from service.adapters.embedded import free_port
from service.adapters.stats import Stats
from service.config.settings import Settings
from service.core.retry import RateLimitInfo
from service.intake.app import create_app
from tests.conftest import REPO, RULES_DIR

NOW = 1_800_000_000.0
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"


def exchange(status: int | None, *, method: str = "PUT", path: str = "opportunity/o1/") -> Exchange:
    return Exchange(method, path, status, 0.05, RateLimitInfo(limit=20, remaining=7, reset_sec=1.5))


@pytest.fixture
def stats(redis_client: redis.Redis) -> Stats:
    return Stats(redis_client, clock=lambda: NOW)


def counters(stats: Stats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, s.labels): s.value for s in stats.samples()}


def test_stats_observe_close_counts_by_method_and_status(stats: Stats) -> None:
    """Each attempt counts under its method and status; no answer counts as status none."""
    stats.observe_close(exchange(200))
    stats.observe_close(exchange(200, method="GET"))
    stats.observe_close(exchange(None))

    assert {
        ("close_requests_total", (("method", "GET"), ("status", "200"))): 1.0,
        ("close_requests_total", (("method", "PUT"), ("status", "200"))): 1.0,
        ("close_requests_total", (("method", "PUT"), ("status", "none"))): 1.0,
    } == counters(stats)


def test_stats_observe_close_counts_429s_and_the_retries_after_them(stats: Stats) -> None:
    """A 429 and a 503 each make the next attempt of that call a retry; a 404 does not."""
    for status in (429, 503, 200):
        stats.observe_close(exchange(status))
    stats.observe_close(exchange(404, path="opportunity/gone/"))
    stats.observe_close(exchange(200, path="opportunity/gone/"))

    found = counters(stats)
    assert 1.0 == found[("close_rate_limited_total", ())]
    assert 2.0 == found[("close_retries_total", (("method", "PUT"),))]


def test_stats_observe_close_keeps_the_last_rate_limit(stats: Stats) -> None:
    """The last ratelimit header, its request and when it was seen, plus the call time."""
    stats.observe_close(exchange(200))

    seen = stats.last_rate_limit()
    assert seen is not None
    assert (20, 7, 1.5, NOW, "PUT", "opportunity/o1/") == (
        seen.limit,
        seen.remaining,
        seen.reset_sec,
        seen.seen_at,
        seen.method,
        seen.path,
    )
    assert NOW == stats.last_times()["last_close_call_at"]


def test_stats_observe_close_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """With Redis unreachable the observation is dropped with a warning, not raised."""
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))

    Stats(dead).observe_close(exchange(200))

    assert ["stats_not_recorded"] == [r.getMessage() for r in caplog.records]


def test_stats_lag_histogram_is_cumulative(stats: Stats) -> None:
    """Buckets count every observation at or under their bound; negatives count as 0."""
    for seconds in (-3.0, 0.5, 4.0, 4.0, 100_000.0):
        stats.observe_lag(seconds)

    [lag] = stats.histograms()
    buckets = dict(lag.buckets)
    assert (2.0, 4.0, 4.0, 5.0) == (
        buckets["1.0"],
        buckets["5.0"],
        buckets["86400.0"],
        buckets["+Inf"],
    )
    assert (100_008.5, 5.0) == (lag.sum, lag.count)


def test_stats_observe_lag_since_measures_from_the_event_time(stats: Stats) -> None:
    """An event 90 s before now lands in the 120 s bucket and adds 90 to the sum."""
    stats.observe_lag_since(datetime.fromtimestamp(NOW - 90, tz=UTC))

    [lag] = stats.histograms()
    assert (0.0, 1.0, 90.0) == (dict(lag.buckets)["60.0"], dict(lag.buckets)["120.0"], lag.sum)


def test_stats_observer_sees_a_real_client_retry(
    fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """Wired as CloseClient's observer, a 503 and its retry count as two requests, one retry."""
    oppo = fake_close.add_opportunity(confidence=10)
    fake_close.fail_next(1, status=503, method="PUT")
    stats = Stats(redis_client)
    client = CloseClient(
        FakeClose.DEFAULT_API_KEY,
        base_url=fake_close.url,
        observer=stats.observe_close,
        sleep=lambda _: None,
    )

    with client:
        client.update_opportunity(oppo["id"], {"confidence": 50}, tz_offset_hours=None)

    found = counters(stats)
    assert (1.0, 1.0, 1.0) == (
        found[("close_requests_total", (("method", "PUT"), ("status", "503")))],
        found[("close_requests_total", (("method", "PUT"), ("status", "200")))],
        found[("close_retries_total", (("method", "PUT"),))],
    )


@pytest.fixture
def client(redis_url: str) -> Iterator[FlaskClient]:
    settings = Settings(
        close_api_key="sk-metrics-secret-123",
        webhook_secrets=(bytes.fromhex("11" * 32),),
        redis_url=redis_url,
        rules_path=str(RULES_DIR),
    )
    app = create_app(settings)
    yield app.test_client()
    app.extensions["dealkeeper"].connection.close()


def scrape(client: FlaskClient, redis_client: redis.Redis) -> str:
    stats = Stats(redis_client)
    stats.observe_close(exchange(429))
    stats.observe_close(exchange(200))
    stats.observe_lag(3.0)
    stats.incr("rules_fired_total", rule="stamp-date-won")
    return client.get("/metrics").get_data(as_text=True)


def test_metrics_show_close_calls_lag_and_rules(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    """One scrape shows what other processes recorded, the lag histogram and the rules' digest."""
    text = scrape(client, redis_client)

    ready = json.loads(client.get("/readyz").get_data(as_text=True))
    for line in (
        'dealkeeper_close_requests_total{method="PUT",status="429"} 1.0',
        "dealkeeper_close_rate_limited_total 1.0",
        'dealkeeper_close_retries_total{method="PUT"} 1.0',
        'dealkeeper_event_lag_seconds_bucket{le="2.5"} 0.0',
        'dealkeeper_event_lag_seconds_bucket{le="5.0"} 1.0',
        'dealkeeper_event_lag_seconds_bucket{le="+Inf"} 1.0',
        "dealkeeper_event_lag_seconds_count 1.0",
        "dealkeeper_event_lag_seconds_sum 3.0",
        f'dealkeeper_rules_info{{digest="{ready["rules_digest"]}"}} 1.0',
        f"dealkeeper_rules_loaded {ready['rules']:.1f}",
        "dealkeeper_close_ratelimit_remaining 7.0",
        "dealkeeper_jobs_parked_total 0.0",
        "dealkeeper_workers 0.0",
    ):
        assert line in text.splitlines(), line
    assert "sk-metrics-secret-123" not in text


def test_metrics_grafana_dashboard_names_only_exposed_metrics(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    """Every dealkeeper_* series the sample dashboard queries is one /metrics exposes."""
    Stats(redis_client).record_webhook(None, outcome="queued")
    Stats(redis_client).incr("events_total", outcome="applied")
    text = scrape(client, redis_client)
    exposed = set(re.findall(r"^(dealkeeper_\w+)", text, flags=re.MULTILINE))
    dashboard = json.loads(DASHBOARD.read_text())

    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"dealkeeper_\w+", target["expr"])
    }

    assert set() == queried - exposed
    assert len(queried) >= 15


def test_stats_deferred_observations_wait_for_the_job_pipeline(
    stats: Stats, redis_client: redis.Redis
) -> None:
    """Inside deferred(), Close's answers are written by flush_deferred on the job's own
    pipeline, not one round trip each."""
    with stats.deferred():
        stats.observe_close(exchange(200))
        written_early = counters(stats)
        with redis_client.pipeline() as pipe:
            stats.flush_deferred(pipe)
            pipe.execute()

    assert {} == written_early
    assert {("close_requests_total", (("method", "PUT"), ("status", "200"))): 1.0} == counters(
        stats
    )


def test_stats_deferred_observations_left_over_are_written_at_the_end(stats: Stats) -> None:
    """A job that failed before its final pipeline still has Close's answers counted."""
    with pytest.raises(RuntimeError), stats.deferred():
        stats.observe_close(exchange(429))
        raise RuntimeError("the job failed")

    assert 1.0 == counters(stats)[("close_rate_limited_total", ())]
