"""A worker's housekeeping, in a real Redis: renewing what it holds, taking back abandoned
jobs, moving due scheduled jobs to the queue; and waiting a Redis outage out."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import redis
from rq.job import JobStatus
from rq.scheduler import RQScheduler
from rq.utils import now as rq_now

from service.adapters.embedded import RedisServer
from service.adapters.housekeeping import InHand, Scheduling, take_back_abandoned
from service.adapters.locks import OpportunityLock
from service.adapters.outage import RedisOutage, StoppedWaitingError
from service.adapters.queue import EventQueue, make_queue

ABANDONED_AT = 1_000.0  # epoch seconds: long ago, so any entry scored before now lapsed


@pytest.fixture
def queue(redis_client: redis.Redis) -> EventQueue:
    return make_queue(redis_client)


def _started(queue: EventQueue, *, score: float, retries: int = 2) -> tuple[str, str]:
    """A job as a worker leaves it when killed mid-run: started, listed until `score`."""
    job = queue.enqueue_call("tests.poolfuncs.meet", args=("k", 1))
    job.retries_left = retries
    job.set_status(JobStatus.STARTED)
    job.save()
    queue.connection.lrem(queue.key, 0, job.id)
    member = f"{job.id}:execution1"
    queue.connection.zadd(queue.started_job_registry.key, {member: score})
    return job.id, member


def test_an_abandoned_job_is_queued_again_at_the_front_at_once(queue: EventQueue) -> None:
    waiting = queue.enqueue_call("tests.poolfuncs.meet", args=("k", 1))
    job_id, member = _started(queue, score=ABANDONED_AT)

    assert [job_id] == take_back_abandoned(queue, now=ABANDONED_AT + 1)

    job = queue.fetch_job(job_id)
    assert job is not None
    assert ([job_id, waiting.id], JobStatus.QUEUED, 1) == (
        queue.get_job_ids(),
        job.get_status(),
        job.retries_left,
    )
    assert queue.connection.zscore(queue.started_job_registry.key, member) is None


def test_a_job_still_renewed_is_left_alone(queue: EventQueue) -> None:
    job_id, _ = _started(queue, score=ABANDONED_AT + 10)

    assert [] == take_back_abandoned(queue, now=ABANDONED_AT + 1)
    job = queue.fetch_job(job_id)
    assert job is not None and JobStatus.STARTED == job.get_status()


def test_a_job_abandoned_more_often_than_it_may_retry_is_left_to_rqs_cleanup(
    queue: EventQueue,
) -> None:
    """RQ's registry cleaning parks it with AbandonedJobError (a poison event that kills
    every worker must not loop for ever)."""
    _, member = _started(queue, score=ABANDONED_AT, retries=0)

    assert [] == take_back_abandoned(queue, now=ABANDONED_AT + 1)
    assert queue.connection.zscore(queue.started_job_registry.key, member) is not None


def test_no_two_workers_take_back_one_job(queue: EventQueue) -> None:
    """RQ's maintenance lock is held: another worker is cleaning the registries."""
    _started(queue, score=ABANDONED_AT)
    assert queue.acquire_maintenance_lock()

    assert [] == take_back_abandoned(queue, now=ABANDONED_AT + 1)


def test_what_is_in_hand_is_renewed_until_the_job_ends(
    queue: EventQueue, redis_client: redis.Redis
) -> None:
    in_hand = InHand()
    _, member = _started(queue, score=ABANDONED_AT)
    lock = OpportunityLock(redis_client, "oppo_1", ttl_sec=1, wait_sec=0)
    lock.acquire()
    in_hand.job_started(queue.started_job_registry.key, member, f"rq:execution:{member}")
    in_hand.keep(lock)

    with redis_client.pipeline() as pipe:
        assert in_hand.renew_on(pipe, ttl_sec=8, now=ABANDONED_AT + 5)
        pipe.execute()
    renewed = (
        redis_client.zscore(queue.started_job_registry.key, member),
        redis_client.pttl(lock.key),
    )
    lock.release()
    in_hand.job_ended()

    assert ABANDONED_AT + 13 == renewed[0]
    assert 7000 < renewed[1] <= 8000
    with redis_client.pipeline() as pipe:
        assert not in_hand.renew_on(pipe, ttl_sec=8, now=ABANDONED_AT + 6)


def test_a_lock_taken_over_by_another_worker_is_not_renewed(redis_client: redis.Redis) -> None:
    lock = OpportunityLock(redis_client, "oppo_1", ttl_sec=1, wait_sec=0)
    lock.acquire()
    redis_client.set(lock.key, "another-worker", px=500)

    with redis_client.pipeline() as pipe:
        lock.extend_on(pipe, ttl_sec=8)
        assert [0] == pipe.execute()


def test_due_scheduled_jobs_are_queued_by_the_scheduler_lock_holder_only(
    queue: EventQueue, redis_client: redis.Redis
) -> None:
    due = queue.enqueue_at(rq_now() - timedelta(seconds=1), "tests.poolfuncs.meet", "k", 1)
    later = queue.enqueue_at(rq_now() + timedelta(hours=1), "tests.poolfuncs.meet", "k", 1)
    first = Scheduling(queue, owner="w1", lock_ttl_sec=10)
    second = Scheduling(queue, owner="w2", lock_ttl_sec=10)

    assert 0 == second.enqueue_due(now=0)  # takes the lock; nothing was due at 0
    assert (0, []) == (first.enqueue_due(now=rq_now().timestamp()), queue.get_job_ids())
    second.release()
    assert 1 == first.enqueue_due(now=rq_now().timestamp())
    assert [due.id] == queue.get_job_ids()
    assert [later.id] == queue.scheduled_job_registry.get_job_ids()
    assert b"w1" == redis_client.get(RQScheduler.get_locking_key(queue.name))


def test_an_outage_is_waited_out_and_logged_once_each_way(
    redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_url)
    redis_server.stop()
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 4:
            redis_server.start()

    with caplog.at_level(logging.INFO, logger="dealkeeper.redis"):
        assert RedisOutage(client, role="worker", sleep=nap).ride(client.ping)
    lines = [r.getMessage() for r in caplog.records if r.name == "dealkeeper.redis"]
    assert (["redis_unavailable", "redis_back"], [0.5, 1.0, 2.0, 4.0]) == (lines, naps)


def test_waiting_for_redis_ends_when_the_process_is_asked_to_stop(
    redis_server: RedisServer, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    redis_server.stop()
    asked = iter([False, False, True])

    with pytest.raises(StoppedWaitingError):
        RedisOutage(
            client, role="worker", should_stop=lambda: next(asked), sleep=lambda _: None
        ).ride(client.ping)
