"""Jobs other than events meet a refused CLOSE_API_KEY as Close's own 401: a real worker in
this process puts them back in the queue too, uncounted, and runs them once the key works."""

from __future__ import annotations

import pytest
import redis
from rq import Queue
from rq.job import JobStatus

from fakeclose import FakeClose
from service.adapters.authfault import PROBE_KEY, read_refusal
from service.config.settings import Settings
from service.processing import catchup
from service.processing.worker import make_worker

OWN_KEY = {FakeClose.DEFAULT_API_KEY: FakeClose.DEFAULT_API_KEY_ID}


@pytest.mark.allow_error_logs  # close_key_refused is an ERROR line by design
def test_a_catch_up_run_waits_for_the_key_instead_of_failing(
    fake_close: FakeClose, settings: Settings, queue: Queue, redis_client: redis.Redis
) -> None:
    fake_close.set_api_keys({})
    job = queue.enqueue(catchup.JOB_FUNCTION, job_id="catchup-refused")
    make_worker(settings).work(burst=True, with_scheduler=False)

    assert JobStatus.QUEUED == job.get_status(refresh=True)
    assert (1, 0) == (queue.count, queue.failed_job_registry.count)
    refused = read_refusal(redis_client)
    assert refused is not None and refused.status == 401

    fake_close.set_api_keys(OWN_KEY)
    redis_client.delete(PROBE_KEY)  # the paced probe is due: no need to wait for it
    make_worker(settings).work(burst=True, with_scheduler=False)
    assert JobStatus.FINISHED == job.get_status(refresh=True)
    assert read_refusal(redis_client) is None
