"""The worker class: RQ's SimpleWorker with the same writes in fewer round trips."""

from __future__ import annotations

import os
from datetime import timedelta

import redis
from rq import Worker
from rq.utils import now

from service.adapters.queue import make_queue
from service.adapters.steadyworker import SteadyWorker
from service.adapters.workerclass import LeanSimpleWorker


def command_counts(client: redis.Redis) -> dict[str, int]:
    return {name: stat["calls"] for name, stat in client.info("commandstats").items()}


def test_worker_heartbeat_is_one_pipelined_round_trip(redis_client: redis.Redis) -> None:
    """HSET and EXPIRE of a heartbeat go together in one MULTI/EXEC, not one trip each."""
    worker = LeanSimpleWorker([make_queue(redis_client)], connection=redis_client)
    worker.register_birth()  # type: ignore[no-untyped-call]  # as every worker is, first
    redis_client.config_resetstat()

    worker.heartbeat()
    counts = command_counts(redis_client)

    assert (1, 1, 1) == (
        counts["cmdstat_hset"],
        counts["cmdstat_expire"],
        counts["cmdstat_exec"],
    )
    assert 0 < redis_client.ttl(worker.key)


def test_worker_state_already_written_is_not_written_again(redis_client: redis.Redis) -> None:
    """Marking an idle worker idle again costs no write; a new state is written."""
    worker = LeanSimpleWorker([make_queue(redis_client)], connection=redis_client)
    worker.set_state("idle")
    redis_client.config_resetstat()

    worker.set_state("idle")
    unchanged = command_counts(redis_client).get("cmdstat_hset", 0)
    worker.set_state("busy")

    assert (0, b"busy") == (unchanged, redis_client.hget(worker.key, "state"))


def test_worker_heartbeat_repeating_the_last_is_not_sent(redis_client: redis.Redis) -> None:
    """RQ beats back to back around each dequeue: a repeat (same TTL, within a second) costs
    nothing; a beat with another TTL (a job's) is sent."""
    worker = LeanSimpleWorker([make_queue(redis_client)], connection=redis_client)
    worker.heartbeat()
    redis_client.config_resetstat()

    worker.heartbeat()
    repeated = command_counts(redis_client).get("cmdstat_exec", 0)
    worker.heartbeat(worker.worker_ttl + 1000)

    assert (0, 1) == (repeated, command_counts(redis_client).get("cmdstat_exec", 0))
    assert worker.worker_ttl + 900 < redis_client.ttl(worker.key)


def test_worker_suspension_is_looked_up_at_most_once_a_second(redis_client: redis.Redis) -> None:
    """`rq suspend` is honoured within a second, without a round trip before every job."""
    worker = LeanSimpleWorker([make_queue(redis_client)], connection=redis_client)
    worker.check_for_suspension(burst=True)
    redis_client.config_resetstat()

    for _ in range(5):
        worker.check_for_suspension(burst=True)

    assert 0 == command_counts(redis_client).get("cmdstat_exists", 0)


def test_worker_new_state_goes_with_a_heartbeat(redis_client: redis.Redis) -> None:
    """RQ marks the worker idle after each job, then beats: one round trip for both."""
    worker = LeanSimpleWorker([make_queue(redis_client)], connection=redis_client)
    redis_client.config_resetstat()

    worker.set_state("idle")
    worker.heartbeat()
    counts = command_counts(redis_client)

    assert (1, 1) == (counts["cmdstat_exec"], counts["cmdstat_expire"])
    assert b"idle" == redis_client.hget(worker.key, "state")


def test_worker_short_job_ends_without_another_heartbeat(redis_client: redis.Redis) -> None:
    """A job that ended well inside its heartbeat's TTL is not beaten for again (a round
    trip); one that ran for most of it still is."""
    queue = make_queue(redis_client)
    worker = LeanSimpleWorker([queue], connection=redis_client)
    short, long = (queue.enqueue_call("bench.bareapp.noop") for _ in range(2))
    short.started_at = now()
    long.started_at = now() - timedelta(seconds=90)
    redis_client.config_resetstat()

    worker.handle_execution_ended(short, queue, heartbeat_ttl=100)
    quiet = command_counts(redis_client).get("cmdstat_hset", 0)
    worker.handle_execution_ended(long, queue, heartbeat_ttl=100)

    assert (0, 1) == (quiet, command_counts(redis_client).get("cmdstat_hset", 0))
    assert None not in (short.ended_at, long.ended_at)


def test_a_worker_whose_registration_redis_lost_registers_again(redis_client: redis.Redis) -> None:
    """A heartbeat finding the worker's key gone (Redis restarted without it) writes the whole
    registration again, rather than a hash with only `last_heartbeat` that lists no pid."""
    worker = SteadyWorker([make_queue(redis_client)], connection=redis_client)
    worker.register_birth()
    redis_client.delete(worker.key)

    worker.heartbeat()

    listed = {w.name: w.pid for w in Worker.all(connection=redis_client)}
    assert {worker.name: os.getpid()} == listed
