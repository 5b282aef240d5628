"""Fault injection: each test starts a whole cluster (tests/cluster.py) and asserts the final
state of every opportunity and the exact number of writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fakeclose import FakeClose
from tests.cluster import KEY_HEX, Cluster, make_cluster
from tests.conftest import SUITE_SECRETS

# A fault test starts a whole cluster, breaks it and waits for it to heal (bounded by each
# wait's own deadline): more than the suite's 120 s per test on a busy 2-core machine.
FAULT_TEST_TIMEOUT_SEC = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(FAULT_TEST_TIMEOUT_SEC))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster with its own persistent Redis (appendfsync always: an acknowledged event
    survives a Redis restart) and the fake Close; started by each test with its workers."""
    with FakeClose() as fake:
        running = make_cluster(tmp_path, fake)
        server = running.redis_server
        try:
            yield running
        finally:
            running.stop()
            print(running.logs())
            logged = "".join(p.read_text() for p in tmp_path.glob("*.log"))
            server.stop()
            assert [] == [s for s in SUITE_SECRETS if s in logged]


def post_signed(cluster: Cluster, body: bytes) -> int:
    """Deliver a body to gunicorn as Close would; returns the status."""
    from service.intake import signatures

    headers = signatures.signed_headers(
        body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())
    )
    answer = requests.post(
        f"{cluster.web_url}/webhooks/close",
        data=body,
        headers={**headers, "content-type": "application/json"},
        timeout=10,
    )
    return answer.status_code
