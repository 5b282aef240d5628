"""A worker, alone or pooled, exits within seconds of its last job or of SIGTERM, every time.

RQ stops its pubsub thread (the one that listens for `rq` commands) at every exit. With
redis-py 8 that stop waited for the thread without a limit, and the thread waited up to
60 s for a message that never came after its UNSUBSCRIBE: a minute's hang in about four
exits of five, past Heroku's 30 s before SIGKILL. Each exit here is timed from the last
job's end (burst) or from SIGTERM, ten times, because the hang was a race.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from rq import Worker

from service.adapters.queue import make_queue
from service.adapters.steadyworker import SteadyWorker
from tests.cluster import REPO
from tests.waiting import wait_for

# An exit is quick when it takes under this; the hang it guards against took 54-61 s.
EXIT_LIMIT_SEC = 10.0
# How long the test waits for the jobs, the registration or an exit before it calls it a
# failure (an exit is already one past EXIT_LIMIT_SEC): generous for a busy 2-core machine.
EXIT_WAIT_SEC = 30.0
RUNS = 10
ENVIRONMENT = {"DEALKEEPER_WORKER_TTL": "16", "DEALKEEPER_CATCHUP_INTERVAL": "0"}


@pytest.fixture
def worker_env(redis_url: str) -> Iterator[dict[str, str]]:
    environment = {**os.environ, "REDIS_URL": redis_url, **ENVIRONMENT}
    environment.pop("CLOSE_API_KEY", None)
    yield environment


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "worker", *args],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _exit_time(process: subprocess.Popen[bytes], since: float) -> float:
    try:
        process.wait(timeout=EXIT_WAIT_SEC)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.monotonic() - since


def _wait_registered(client: redis.Redis, pid: int) -> None:
    wait_for(lambda: any(w.pid == pid for w in Worker.all(connection=client)),
             what="the worker to register", timeout=EXIT_WAIT_SEC)  # fmt: skip


def _rounded(times: list[float]) -> list[float]:
    return [round(t, 1) for t in times]


def _last_job_ended(client: redis.Redis, job_ids: list[str]) -> float:
    queue = make_queue(client)

    def ended() -> bool:
        jobs = [queue.fetch_job(job_id) for job_id in job_ids]
        return all(job is not None and job.is_finished for job in jobs)

    wait_for(ended, what="the jobs to finish", timeout=EXIT_WAIT_SEC)
    return time.monotonic()


def test_a_pooled_burst_worker_exits_soon_after_its_last_job(
    worker_env: dict[str, str], redis_client: redis.Redis
) -> None:
    times = []
    for _ in range(RUNS):
        queue = make_queue(redis_client)
        jobs = [queue.enqueue_call("tests.poolfuncs.meet", args=("met", 1)) for _ in range(3)]
        pool = _start(worker_env, "--processes", "3", "--burst")
        times.append(_exit_time(pool, _last_job_ended(redis_client, [j.id for j in jobs])))
        assert times[-1] < EXIT_LIMIT_SEC, f"exits so far: {_rounded(times)}"
        assert 0 == pool.returncode


def test_a_worker_exits_soon_after_sigterm(
    worker_env: dict[str, str], redis_client: redis.Redis
) -> None:
    times = []
    for _ in range(RUNS):
        worker = _start(worker_env)
        _wait_registered(redis_client, worker.pid)
        worker.send_signal(signal.SIGTERM)
        times.append(_exit_time(worker, time.monotonic()))
        assert times[-1] < EXIT_LIMIT_SEC, f"exits so far: {_rounded(times)}"
        assert worker.returncode in (0, -signal.SIGTERM)


def test_a_sigterm_during_the_teardown_does_not_fail_the_exit(redis_url: str) -> None:
    """The platform's SIGTERM may land while the worker already tears down; RQ's handler
    then raised StopRequested from inside the teardown, and the process exited with 1."""
    signalled: list[bool] = []

    class SignalledWhileTearingDown(SteadyWorker):
        def unsubscribe(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # handled before kill returns, in CPython
            signalled.append(True)
            super().unsubscribe()

    connection = redis.Redis.from_url(redis_url)
    before = signal.getsignal(signal.SIGTERM)
    try:
        worker = SignalledWhileTearingDown([make_queue(connection)], connection=connection)
        worked = worker.work(burst=True, with_scheduler=False)
    finally:
        signal.signal(signal.SIGTERM, before)
        connection.close()

    assert (False, [True]) == (worked, signalled)
