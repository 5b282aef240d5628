"""GET /metrics: Prometheus text rendered from the counters in Redis and the queue's state.

Everything is read from Redis at scrape time, so one scrape of any web process shows what
every web and worker process did, wherever it runs (prometheus_client's multiprocess mode
only sums processes of one machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from rq import Queue, Worker

from service.adapters.rulefiles import RulesHolder
from service.adapters.stats import HistogramData, Sample, Stats
from service.adapters.unknownfields import read_unknown_fields
from service.config import defaults
from service.config.errors import InvalidRulesError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "dealkeeper_"
HELP = {
    "webhooks_total": "Webhook deliveries answered, by outcome.",
    "events_total": "Events processed by workers, by outcome.",
    "rules_fired_total": "Rules that fired, by rule.",
    "close_requests_total": "HTTP attempts made to Close, by method and status (none: no answer).",
    "close_rate_limited_total": "Close answers that were 429 (rate limited).",
    "close_retries_total": "Attempts repeating a failed one (no answer, 429, 5xx), by method.",
    "jobs_parked_total": "Jobs parked after a permanent failure.",
    "jobs_parked_dropped_total": "Parked events dropped (oldest first) past the cap.",
    "writes_not_taken_total": "Writes Close answered 200 without taking every field sent.",
    "event_lag_seconds": "From the event's time in Close to our write of its update.",
}
# Shown as 0 before the first increment, so alerts on them see a series from the start.
ALWAYS_SHOWN = (
    "jobs_parked_total",
    "jobs_parked_dropped_total",
    "close_rate_limited_total",
    "writes_not_taken_total",
)
LAST_TIMES = {
    "last_webhook_at": (
        "last_webhook_timestamp_seconds",
        "When a webhook was last accepted (queued, duplicate or ignored).",
    ),
    "last_close_call_at": ("last_close_call_timestamp_seconds", "When Close last answered us."),
}


class RedisCollector:
    """Collects on every scrape, so every process's counts are included."""

    def __init__(self, stats: Stats, queue: Queue, rules: RulesHolder | None = None) -> None:
        self.stats = stats
        self.queue = queue
        self.rules = rules

    def collect(self) -> Iterator[Metric]:
        yield from _counters(self.stats.samples())
        yield from (_histogram(h) for h in self.stats.histograms())
        yield from _queue_gauges(self.queue)
        yield from _last_seen(self.stats)
        yield _unknown_fields(self.stats)
        if self.rules is not None:
            yield from _rules_info(self.rules)


def _counters(samples: list[Sample]) -> Iterator[Metric]:
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    for name in ALWAYS_SHOWN:
        by_name.setdefault(name, [Sample(name, (), 0.0)])
    for name, group in sorted(by_name.items()):
        labels = [key for key, _ in group[0].labels]
        family = CounterMetricFamily(
            PREFIX + name.removesuffix("_total"), HELP.get(name, name), labels=labels
        )
        for sample in group:
            family.add_metric([value for _, value in sample.labels], sample.value)
        yield family


def _histogram(data: HistogramData) -> Metric:
    return HistogramMetricFamily(
        PREFIX + data.name,
        HELP.get(data.name, data.name),
        buckets=list(data.buckets),
        sum_value=data.sum,
    )


def _queue_gauges(queue: Queue) -> Iterator[Metric]:
    gauges = {
        "queue_depth": ("Events waiting in the queue.", queue.count),
        "jobs_running": ("Events being processed.", queue.started_job_registry.count),
        "jobs_scheduled": ("Events waiting for a retry.", queue.scheduled_job_registry.count),
        "jobs_failed": ("Events parked in the failed registry.", queue.failed_job_registry.count),
        "jobs_parked_max": ("Events the parked store keeps at most.", defaults.PARKED_MAX),
        "workers": ("Worker processes alive.", Worker.count(queue=queue)),
    }
    for name, (help_text, value) in gauges.items():
        yield GaugeMetricFamily(PREFIX + name, help_text, value=value)


def _last_seen(stats: Stats) -> Iterator[Metric]:
    times = stats.last_times()
    for key, (name, help_text) in LAST_TIMES.items():
        if key in times:
            yield GaugeMetricFamily(PREFIX + name, help_text, value=times[key])
    seen = stats.last_rate_limit()
    if seen is None:
        return
    for name, value in (("limit", seen.limit), ("remaining", seen.remaining)):
        if value is not None:
            help_text = f"The {name} of Close's rate-limit header on its last answer carrying one."
            yield GaugeMetricFamily(PREFIX + f"close_ratelimit_{name}", help_text, value=value)


def _unknown_fields(stats: Stats) -> Metric:
    """1 for each rule and name Close no longer knows (shown with no series when none)."""
    family = GaugeMetricFamily(
        PREFIX + "rule_fields_unknown",
        "Names a rule uses that Close does not know now (the rule does not fire), by rule "
        "and field.",
        labels=["rule", "field"],
    )
    for entry in read_unknown_fields(stats.connection):
        family.add_metric([entry.rule, entry.field], 1)
    return family


def _rules_info(rules: RulesHolder) -> Iterator[Metric]:
    with suppress(InvalidRulesError):  # no good rules yet: /readyz says why
        ruleset = rules.current()
        info = GaugeMetricFamily(
            PREFIX + "rules_info", "The rules in force in this web process.", labels=["digest"]
        )
        info.add_metric([ruleset.digest], 1)
        yield info
        yield GaugeMetricFamily(
            PREFIX + "rules_loaded", "Rules in force in this web process.", value=len(ruleset.rules)
        )


def render(stats: Stats, queue: Queue, *, rules: RulesHolder | None = None) -> bytes:
    """The Prometheus exposition text."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(stats, queue, rules))
    return generate_latest(registry)
