"""Redis and RQ wiring: connections, the event queue, dedupe, per-opportunity locks.

An event is queued together with its dedupe record in one MULTI/EXEC, under WATCH on that
record: either both land or neither does, and two deliveries racing each other queue once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import LockError, RedisError, WatchError
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from service import defaults
from service.adapters.embedded import running_embedded_url
from service.adapters.ordering import add_pending
from service.adapters.stats import Stats
from service.errors import ConfigurationError, OpportunityBusyError, QueueUnavailableError
from service.events import Event
from service.settings import Settings

JOB_FUNCTION = "service.jobs.process_event"
DEDUPE_PREFIX = "dk:seen:"
LOCK_PREFIX = "dk:lock:opportunity:"
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Enqueued:
    """The answer to one delivery: its job id, and whether it was already queued before."""

    job_id: str
    duplicate: bool


def redis_url(settings: Settings, *, data_dir: Path | None = None) -> str:
    """REDIS_URL (with REDIS_SSL_CERT_REQS applied), else the embedded server `dealkeeper run`
    keeps in the local data folder."""
    if settings.redis_client_url:
        return settings.redis_client_url
    embedded = running_embedded_url(data_dir or Path(defaults.LOCAL_DATA_DIR))
    if embedded:
        return embedded
    raise ConfigurationError(
        [
            "REDIS_URL is not set and no embedded Redis is running here: start everything "
            "with `dealkeeper run`, or set REDIS_URL (e.g. redis://localhost:6379/0)"
        ]
    )


def connect(url: str, *, role: str = "web") -> redis.Redis:
    """A Redis client for one process role ("web" fails fast so Close gets its 503 quickly)."""
    options: dict[str, Any] = {"health_check_interval": defaults.REDIS_HEALTH_CHECK_INTERVAL_SEC}
    if role == "web":
        options.update(
            socket_timeout=defaults.REDIS_WEB_SOCKET_TIMEOUT_SEC,
            socket_connect_timeout=defaults.REDIS_WEB_SOCKET_TIMEOUT_SEC,
            retry=RedisRetry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries=2),
        )
    return redis.Redis.from_url(url, **options)


def make_queue(connection: redis.Redis) -> Queue:
    """The one queue every event goes through (JSON jobs: readable, no pickle)."""
    return Queue(defaults.QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def job_id_for(event: Event) -> str:
    """A job id RQ accepts (letters, digits, _ and -) that names the event and its version."""
    raw = event.dedupe_key
    safe = _JOB_ID_UNSAFE.sub("_", raw)
    if safe != raw:  # keep distinct events distinct after the substitution
        safe += "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return safe


def enqueue_event(
    event: Event,
    *,
    queue: Queue,
    stats: Stats | None = None,
    job_timeout_sec: int = defaults.JOB_TIMEOUT_SEC,
) -> Enqueued:
    """Queue the event once; QueueUnavailableError when Redis cannot take it."""
    key = DEDUPE_PREFIX + event.dedupe_key
    job_id = job_id_for(event)
    try:
        with queue.connection.pipeline() as pipe:
            pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves watch untyped
            if pipe.exists(key):
                return Enqueued(job_id=job_id, duplicate=True)
            pipe.multi()
            pipe.set(key, job_id, ex=defaults.DEDUPE_TTL_SEC)
            add_pending(pipe, event, job_id=job_id)
            _enqueue_on(pipe, event, queue=queue, job_id=job_id, timeout=job_timeout_sec)
            if stats is not None:
                stats.record_webhook(pipe, outcome="queued")
            pipe.execute()
    except WatchError:
        # Another delivery of the same event wrote the record between WATCH and EXEC.
        return Enqueued(job_id=job_id, duplicate=True)
    except RedisError as error:
        raise QueueUnavailableError(f"Redis did not take the event: {error}") from error
    return Enqueued(job_id=job_id, duplicate=False)


def _enqueue_on(pipe: Any, event: Event, *, queue: Queue, job_id: str, timeout: int) -> None:
    queue.enqueue_call(
        JOB_FUNCTION,
        args=(event.to_dict(),),
        job_id=job_id,
        timeout=timeout,
        result_ttl=defaults.JOB_RESULT_TTL_SEC,
        failure_ttl=defaults.JOB_FAILURE_TTL_SEC,
        retry=Retry(
            max=len(defaults.JOB_RETRY_INTERVALS_SEC),
            interval=list(defaults.JOB_RETRY_INTERVALS_SEC),
        ),
        description=f"{event.name} {event.object_id}",
        pipeline=pipe,
    )


@contextmanager
def opportunity_lock(
    connection: redis.Redis,
    opportunity_id: str,
    *,
    ttl_sec: float = defaults.OPPORTUNITY_LOCK_TTL_SEC,
    wait_sec: float = defaults.OPPORTUNITY_LOCK_WAIT_SEC,
) -> Iterator[None]:
    """Hold the opportunity: no two workers apply events of one opportunity at once."""
    lock = connection.lock(
        LOCK_PREFIX + opportunity_id, timeout=ttl_sec, blocking_timeout=wait_sec, sleep=0.02
    )
    try:
        acquired = lock.acquire()
    except RedisError as error:
        raise OpportunityBusyError(f"could not lock {opportunity_id}: {error}") from error
    if not acquired:
        raise OpportunityBusyError(f"{opportunity_id} is held by another worker")
    try:
        yield
    finally:
        # LockError: the lock outlived its TTL; the work is done, another may hold it now.
        with suppress(LockError):
            lock.release()
