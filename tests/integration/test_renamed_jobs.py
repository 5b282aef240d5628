"""Jobs queued under a function's old dotted name still run after the code moved.

RQ keeps a job's function as its dotted name in Redis. A deploy that moves a module would
otherwise turn every job queued by the release before it (and every catch-up and sweep it
scheduled for later) into an ImportError and a parked event.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import import_attribute

from fakeclose import FakeClose
from service.adapters.queue import RENAMED_FUNCTIONS, make_queue
from service.config.settings import Settings
from service.processing.worker import make_worker


@pytest.fixture
def work(settings: Settings) -> Callable[[], bool]:
    return lambda: make_worker(settings).work(burst=True, with_scheduler=False)


@pytest.mark.parametrize("old_name", sorted(RENAMED_FUNCTIONS))
def test_a_job_stored_under_an_old_name_runs_the_function_it_names_now(
    old_name: str, redis_client: redis.Redis
) -> None:
    job = Job.create(old_name, connection=redis_client, serializer=JSONSerializer)
    job.save()

    fetched = make_queue(redis_client).job_class.fetch(
        job.id, connection=redis_client, serializer=JSONSerializer
    )

    with pytest.raises(ModuleNotFoundError):  # the module it names is gone
        importlib.import_module(old_name.rsplit(".", 1)[0])
    assert import_attribute(RENAMED_FUNCTIONS[old_name]) is fetched.func


def test_an_event_queued_by_the_release_before_the_move_is_applied(
    fake_close: FakeClose, redis_client: redis.Redis, work: Callable[[], bool]
) -> None:
    oppo = fake_close.add_opportunity(confidence=60)
    event = fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Won")})
    queue = make_queue(redis_client)
    queue.enqueue_call("service.jobs.process_event", args=(event,))

    work()

    assert (0, 100) == (
        queue.failed_job_registry.count,
        fake_close.opportunity(oppo["id"])["confidence"],
    )
