"""GET /metrics: Prometheus text rendered from the counters in Redis and the queue's state."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from rq import Queue

from service.adapters.stats import Sample, Stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "dealkeeper_"
HELP = {
    "webhooks_total": "Webhook deliveries answered, by outcome.",
    "events_total": "Events processed by workers, by outcome.",
    "rules_fired_total": "Rules that fired, by rule.",
    "close_requests_total": "Requests made to Close, by method and status.",
    "jobs_parked_total": "Jobs parked after a permanent failure.",
}


class RedisCollector:
    """Collects on every scrape, so every process's counts are included."""

    def __init__(self, stats: Stats, queue: Queue) -> None:
        self.stats = stats
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        yield from _counters(self.stats.samples())
        yield from _queue_gauges(self.queue)


def _counters(samples: list[Sample]) -> Iterator[Metric]:
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)
    for name, group in by_name.items():
        labels = [key for key, _ in group[0].labels]
        family = CounterMetricFamily(
            PREFIX + name.removesuffix("_total"), HELP.get(name, name), labels=labels
        )
        for sample in group:
            family.add_metric([value for _, value in sample.labels], sample.value)
        yield family


def _queue_gauges(queue: Queue) -> Iterator[Metric]:
    gauges = {
        "queue_depth": ("Events waiting in the queue.", queue.count),
        "jobs_running": ("Events being processed.", queue.started_job_registry.count),
        "jobs_scheduled": ("Events waiting for a retry.", queue.scheduled_job_registry.count),
        "jobs_failed": ("Events parked in the failed registry.", queue.failed_job_registry.count),
    }
    for name, (help_text, value) in gauges.items():
        yield GaugeMetricFamily(PREFIX + name, help_text, value=value)


def render(stats: Stats, queue: Queue) -> bytes:
    """The Prometheus exposition text."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(stats, queue))
    return generate_latest(registry)
