"""A CLOSE_API_KEY that Close refuses pauses the workers instead of parking every event.

Each test runs a whole cluster (gunicorn, a real worker, its own Redis) against the fake
Close, whose accepted keys are switched at runtime as an admin revoking or restoring a key
at Close would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import requests

from fakeclose import FakeClose
from service.adapters.authfault import PROBE_CAP_SEC
from service.adapters.queue import make_queue
from tests.cluster import REPO, Cluster
from tests.faults.test_faults import assert_stamped, won_deals, writes_per_opportunity
from tests.waiting import wait_for

EVENTS = 30
# Thirty events through one worker once the key works: the worker notices within one probe
# (at most 10 s apart once backed off), then applies them; generous for a busy 2-core box.
SETTLE_SEC = 180.0
# A paused worker sleeps in one-second steps that SIGTERM interrupts: it exits in well
# under this, where Heroku would kill it after 30 s.
EXIT_SEC = 10.0
# "Within seconds" of a working key: the next probe is at most PROBE_CAP_SEC away, then the
# refusal is cleared at once; the rest is slack for a busy 2-core box.
RESUME_SEC = PROBE_CAP_SEC + 15.0
# Two probes once backed off are up to two caps apart (the default deadline, 20 s, was not).
PROBE_WAIT_SEC = 2 * PROBE_CAP_SEC + 20.0
WRONG_KEY = "sk-dealkeeper-revoked-9b3d7e1f"
OWN_KEY = {FakeClose.DEFAULT_API_KEY: FakeClose.DEFAULT_API_KEY_ID}


def readiness(cluster: Cluster) -> tuple[int, dict[str, Any]]:
    answer = requests.get(f"{cluster.web_url}/readyz", timeout=5)
    return answer.status_code, answer.json()


def status_json(cluster: Cluster) -> dict[str, Any]:
    """What `dealkeeper status --json` says, run as an operator would."""
    done = subprocess.run(
        [sys.executable, "-m", "service", "status", "--json"],
        env=cluster.env,
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def me_probes(cluster: Cluster) -> int:
    return len(cluster.fake.requests_matching(method="GET", path_prefix="me/"))


def paused_with_all_queued(cluster: Cluster) -> bool:
    """Every event delivered and waiting in the queue, and the refusal published."""
    queue = make_queue(cluster.redis)
    delivered = all(d.delivered for d in cluster.fake.deliveries)
    return delivered and queue.count == EVENTS and readiness(cluster)[0] == 503


def assert_paused(cluster: Cluster, *, status: int = 401) -> None:
    """Nothing parked, nothing applied; readyz and status say why; probes go on."""
    probes = me_probes(cluster)
    # Probes at 1, 2, 4 s...: waiting for two more shows the worker kept going round its
    # paused loop (and could have taken or parked events) without guessing a sleep.
    wait_for(
        lambda: me_probes(cluster) >= probes + 2,
        what="the worker to probe /me/ twice more",
        timeout=PROBE_WAIT_SEC,
    )
    queue = make_queue(cluster.redis)
    assert (EVENTS, 0) == (queue.count, queue.failed_job_registry.count)
    assert [] == cluster.our_writes()
    code, body = readiness(cluster)
    assert code == 503
    assert any(f"close api key: refused by Close ({status}" in p for p in body["problems"])
    refused = status_json(cluster)["close_key_refused"]
    assert refused["status"] == status
    assert "CLOSE_API_KEY" in refused["hint"]


def worker_log(cluster: Cluster, number: int = 0) -> str:
    return (cluster.folder / f"worker{number}.log").read_text()


def test_events_wait_for_a_revoked_key_and_go_on_once_it_works_again(cluster: Cluster) -> None:
    """The key revoked at Close: 30 events stay queued (none parked), the worker says so
    once at ERROR, /readyz and `dealkeeper status` say why; the key restored at Close, all
    30 are applied by the same worker, once each, with no one replaying anything."""
    cluster.fake.set_api_keys({})
    cluster.start(workers=1)
    ids = won_deals(cluster, EVENTS)
    wait_for(lambda: paused_with_all_queued(cluster), what="events queued, worker paused")
    assert_paused(cluster)
    assert worker_log(cluster).count("close_key_refused") == 1

    cluster.fake.set_api_keys(OWN_KEY)
    wait_for(lambda: cluster.our_writes(), what="the first write", timeout=RESUME_SEC)
    wait_for(lambda: len(cluster.our_writes()) == EVENTS, what="every event", timeout=SETTLE_SEC)
    assert_stamped(cluster, ids)
    assert {i: 1 for i in ids} == writes_per_opportunity(cluster)
    assert make_queue(cluster.redis).failed_job_registry.count == 0
    assert readiness(cluster)[0] == 200
    assert status_json(cluster)["close_key_refused"] is None
    assert "close_key_accepted" in worker_log(cluster)


def test_a_paused_worker_stops_promptly_and_a_new_key_goes_on_at_once(cluster: Cluster) -> None:
    """A worker started with a wrong key pauses; SIGTERM ends it promptly; a worker started
    with the right key clears the refusal at start and applies every event."""
    cluster.env["CLOSE_API_KEY"] = WRONG_KEY
    cluster.start(workers=1)
    ids = won_deals(cluster, EVENTS)
    wait_for(lambda: paused_with_all_queued(cluster), what="events queued, worker paused")
    assert_paused(cluster)

    paused = cluster.workers[0]
    started = time.monotonic()
    paused.send_signal(signal.SIGTERM)
    assert paused.wait(timeout=EXIT_SEC) == 0
    assert time.monotonic() - started < EXIT_SEC

    cluster.env["CLOSE_API_KEY"] = FakeClose.DEFAULT_API_KEY
    cluster.start_worker()
    wait_for(lambda: cluster.our_writes(), what="the first write", timeout=RESUME_SEC)
    wait_for(lambda: len(cluster.our_writes()) == EVENTS, what="every event", timeout=SETTLE_SEC)
    assert_stamped(cluster, ids)
    assert make_queue(cluster.redis).failed_job_registry.count == 0
    assert readiness(cluster)[0] == 200  # the fixture also searches every log for WRONG_KEY


def test_a_suspended_organization_pauses_the_workers_until_it_is_lifted(cluster: Cluster) -> None:
    """Close answers 403 to every call, GET /me/ included, as for a suspended organization:
    the key is at fault as for a 401. 30 events stay queued (none parked), /readyz and
    `dealkeeper status` name the 403; once Close answers again all 30 are applied."""
    cluster.fake.fail_next(10**6, status=403, body={"error": "Organization suspended"})
    cluster.start(workers=1)
    ids = won_deals(cluster, EVENTS)
    wait_for(lambda: paused_with_all_queued(cluster), what="events queued, worker paused")
    assert_paused(cluster, status=403)
    assert worker_log(cluster).count("close_key_refused") == 1

    cluster.fake.clear_faults()
    wait_for(lambda: cluster.our_writes(), what="the first write", timeout=RESUME_SEC)
    wait_for(lambda: len(cluster.our_writes()) == EVENTS, what="every event", timeout=SETTLE_SEC)
    assert_stamped(cluster, ids)
    assert make_queue(cluster.redis).failed_job_registry.count == 0
    assert readiness(cluster)[0] == 200


def test_a_403_for_one_deal_parks_that_event_only(cluster: Cluster) -> None:
    """Close answers 403 for an operation the key's user may not do: when GET /me/ still
    works, that is the event's problem: it is parked, and the worker goes on."""
    cluster.start(workers=1)
    cluster.fake.fail_next(1, status=403, method="PUT", body={"error": "Forbidden"})
    ids = won_deals(cluster, 3)
    cluster.settle(timeout=SETTLE_SEC)
    queue = make_queue(cluster.redis)
    assert (0, 1) == (queue.count, queue.failed_job_registry.count)
    assert len(cluster.our_writes()) == 2
    assert readiness(cluster)[0] == 200
    assert "close_key_refused" not in worker_log(cluster)
    assert len(ids) == 3
