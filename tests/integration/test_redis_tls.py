"""rediss:// with a self-signed certificate, as Heroku Redis serves it: refused unless
REDIS_SSL_CERT_REQS=none, and then usable by the web's client and the RQ worker alike.

The test Redis is put behind a small TLS proxy holding a certificate made for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from rq.job import JobStatus

from service.adapters.queue import connect, make_queue, redis_url
from service.config.settings import Settings
from service.processing.worker import make_worker
from tests.tls import TLSProxy


@pytest.fixture
def rediss_url(redis_url: str, certificate: tuple[Path, Path]) -> Iterator[str]:
    """A rediss:// URL reaching the test Redis through TLS with a self-signed certificate."""
    port = urlsplit(redis_url).port
    assert port is not None
    proxy = TLSProxy(port, cert=certificate[0], key=certificate[1])
    yield f"rediss://localhost:{proxy.port}/0"
    proxy.close()


def test_redis_tls_self_signed_refused_by_default(rediss_url: str) -> None:
    """Verification is on unless asked otherwise: the self-signed certificate is refused."""
    settings = Settings.from_env({"REDIS_URL": rediss_url})
    client = connect(redis_url(settings), role="web")

    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()


def test_redis_tls_none_lets_the_web_client_in(rediss_url: str) -> None:
    """With REDIS_SSL_CERT_REQS=none the web's client talks to Redis over TLS."""
    settings = Settings.from_env({"REDIS_URL": rediss_url, "REDIS_SSL_CERT_REQS": "none"})
    client = connect(redis_url(settings), role="web")

    assert client.ping()
    client.close()


def test_redis_tls_none_reaches_the_worker_and_its_scheduler(
    rediss_url: str, redis_client: redis.Redis
) -> None:
    """The RQ worker runs a queued job and its scheduler (a connection RQ derives from the
    worker's) releases a scheduled one, both over the unverified TLS connection."""
    settings = Settings.from_env({"REDIS_URL": rediss_url, "REDIS_SSL_CERT_REQS": "none"})
    worker = make_worker(settings, name="tls-test-worker")
    queue = make_queue(worker.connection)
    now = queue.enqueue_call("builtins.len", args=("abc",))
    later = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), "builtins.len", "ab")

    worker.work(burst=True, with_scheduler=True)

    assert (JobStatus.FINISHED, JobStatus.FINISHED) == (
        now.get_status(refresh=True),
        later.get_status(refresh=True),
    )
    worker.connection.close()
