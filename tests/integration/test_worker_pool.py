"""`dealkeeper worker --processes N`: N real worker processes, kept running, stopped together.

Each test starts the real command against the test Redis and watches what RQ records."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Worker
from rq.job import JobStatus

from service.adapters.queue import make_queue
from tests.cluster import REPO
from tests.processes import alive
from tests.waiting import wait_for

StartPool = Callable[..., subprocess.Popen[bytes]]
FAST = {"DEALKEEPER_WORKER_TTL": "16", "DEALKEEPER_CATCHUP_INTERVAL": "0"}


@pytest.fixture
def start_pool(redis_url: str, tmp_path: Path) -> Iterator[StartPool]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **env: str) -> subprocess.Popen[bytes]:
        environment = {**os.environ, "REDIS_URL": redis_url, **FAST, **env}
        environment.pop("CLOSE_API_KEY", None)
        with (tmp_path / "pool.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "service", "worker", *args],
                cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # so teardown can end the pool with its children
            )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _pids(client: redis.Redis) -> set[int]:
    return {worker.pid for worker in Worker.all(connection=client) if worker.pid}


def _living(client: redis.Redis) -> set[int]:
    """Registered workers still running (a dead one stays registered until its TTL)."""
    return {pid for pid in _pids(client) if alive(pid)}


def test_processes_work_side_by_side(start_pool: StartPool, redis_client: redis.Redis) -> None:
    """Three jobs that can only finish when all three run at once all finish, each in its
    own process, and the burst pool exits 0 when the queue is empty."""
    queue = make_queue(redis_client)
    jobs = [queue.enqueue_call("tests.poolfuncs.meet", args=("met", 3)) for _ in range(3)]

    pool = start_pool("--processes", "3", "--burst")

    assert 0 == pool.wait(timeout=30)
    results = [queue.fetch_job(job.id) for job in jobs]
    assert [JobStatus.FINISHED] * 3 == [job.get_status() for job in results if job is not None]
    assert 3 == len({job.return_value() for job in results if job is not None})


def test_the_environment_sets_the_number_of_processes(
    start_pool: StartPool, redis_client: redis.Redis
) -> None:
    queue = make_queue(redis_client)
    jobs = [queue.enqueue_call("tests.poolfuncs.meet", args=("met", 2)) for _ in range(2)]

    pool = start_pool("--burst", DEALKEEPER_WORKER_PROCESSES="2")

    assert 0 == pool.wait(timeout=30)
    assert [JobStatus.FINISHED] * 2 == [job.get_status(refresh=True) for job in jobs]


def test_a_killed_process_is_started_again(
    start_pool: StartPool, redis_client: redis.Redis
) -> None:
    start_pool("--processes", "2")
    first = wait_for(lambda: _pids(redis_client) if len(_pids(redis_client)) == 2 else None,
                     what="two worker processes")  # fmt: skip
    victim = min(first)

    os.kill(victim, signal.SIGKILL)

    replaced = wait_for(
        lambda: (_pids(redis_client) - first) or None, what="a new worker process", timeout=30
    )
    assert (1, True) == (len(replaced), all(alive(pid) for pid in (first - {victim}) | replaced))


@pytest.mark.parametrize("everyone", [True, False], ids=["heroku", "docker-stop"])
def test_sigterm_lets_the_job_in_hand_finish_then_all_stop(
    start_pool: StartPool, redis_client: redis.Redis, everyone: bool
) -> None:
    """SIGTERM to every process at once (Heroku) or to the pool alone, which passes it on
    (`docker stop`): the event in hand is finished, not failed, and everything exits 0."""
    pool = start_pool("--processes", "2")
    wait_for(lambda: len(_pids(redis_client)) == 2, what="two worker processes")
    job = make_queue(redis_client).enqueue_call("tests.poolfuncs.hold", args=("started", "go"))
    holder = int(wait_for(lambda: redis_client.get("started"), what="the job to start"))
    others = _pids(redis_client) - {holder}

    for pid in (pool.pid, holder, *others) if everyone else (pool.pid,):
        os.kill(pid, signal.SIGTERM)
    redis_client.set("go", 1)

    assert 0 == pool.wait(timeout=30)
    assert (JobStatus.FINISHED, "finished") == (job.get_status(refresh=True), job.return_value())
    assert not any(alive(pid) for pid in (holder, *others))


def test_workers_do_not_outlive_a_killed_pool(
    start_pool: StartPool, redis_client: redis.Redis
) -> None:
    """SIGKILL (or the OOM killer) gives the pool no chance to pass anything on; the kernel
    sends its processes SIGTERM, and they stop instead of working on unsupervised."""
    pool = start_pool("--processes", "2")
    workers = wait_for(lambda: _pids(redis_client) if len(_pids(redis_client)) == 2 else None,
                       what="two worker processes")  # fmt: skip

    pool.kill()
    pool.wait()

    wait_for(lambda: not any(alive(pid) for pid in workers), what="the workers to stop")


def test_a_process_refused_by_a_full_redis_waits_for_room(
    start_pool: StartPool, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """As when a deploy's old and new dynos overlap on Heroku Redis's connection limit: the
    process Redis turns away waits, says so once, and runs once there is room."""
    limit = int(redis_client.config_get("maxclients")["maxclients"] or 10000)
    in_use = len(redis_client.client_list())
    redis_client.config_set("maxclients", in_use + 2)  # room for one worker process, not two
    try:
        start_pool("--processes", "2")
        wait_for(lambda: b"redis_unavailable" in (tmp_path / "pool.log").read_bytes(),
                 what="a worker process to be turned away")  # fmt: skip
    finally:
        redis_client.config_set("maxclients", limit)

    wait_for(lambda: len(_living(redis_client)) == 2, what="two living workers", timeout=40)
    assert b"worker_process_exited" not in (tmp_path / "pool.log").read_bytes()
