"""Redis and RQ wiring: connections, the event queue, queueing an event once (dedupe).

An event is queued together with its dedupe record in one Lua script: it writes the record
(SET NX) and, only if the record was not there, writes the job the way RQ's enqueue_call
does. Either both land or neither does, two deliveries racing each other queue once, and it
costs one round trip (WATCH, EXISTS and MULTI/EXEC cost three).

The job's hash is written from a template: the fields that are the same for every event are
taken once per process from what RQ itself would write, and only the event's own fields are
made per webhook. Building RQ's Job and a pipeline for every webhook cost more than the
round trip itself (tests/integration/test_queue.py checks the hash is the one RQ writes).
"""

from __future__ import annotations

import hashlib
import re
import weakref
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as RedisRetry
from rq import Queue, Retry
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.utils import import_attribute, now, utcformat

from service.adapters.embedded import running_embedded_url
from service.adapters.eviction import is_out_of_memory
from service.adapters.ordering import pending_key
from service.adapters.ordering import score as pending_score
from service.adapters.stats import LAST_KEY, LAST_WEBHOOK_FIELD, STATS_KEY, Stats
from service.config import defaults
from service.config.errors import ConfigurationError, QueueUnavailableError, RedisFullError
from service.config.settings import Settings
from service.core.events import Event, require_payload

JOB_FUNCTION = "service.processing.jobs.process_event"
# RQ stores a job's function by its dotted name. Jobs queued before the modules moved into
# packages by role (or scheduled then for a later time: catch-ups, sweeps) carry the old
# names; they run under the new ones, so an upgrade loses none of them.
RENAMED_FUNCTIONS = {
    "service.jobs.process_event": JOB_FUNCTION,
    "service.catchup.scheduled_catch_up": "service.processing.catchup.scheduled_catch_up",
    "service.sweeps.schedule.run_scheduled_sweep": (
        "service.processing.sweeps.schedule.run_scheduled_sweep"
    ),
}
# Queues one event in one round trip. It writes the dedupe record (SET NX) and only if the
# record was not there, writes what RQ's enqueue_call writes for the job, lists the event as
# pending for its opportunity (service/adapters/ordering.py) and, given KEYS[6] and KEYS[7],
# counts the webhook (Stats.record_webhook). Either all of it lands or none of it does, and
# two deliveries racing each other queue once.
# KEYS: dedupe record, pending set, job hash, RQ queue, RQ's set of queues[, stats, last-seen]
# ARGV: job id, TTL of the dedupe record and pending set, pending score, stats counter
#       field, last-seen time, then the job hash's fields that differ from event to event
# CONSTANT_FIELDS is replaced by the job template's other fields, as Lua strings: written
# into the script once, they are not sent and parsed again with every webhook.
# Returns 1 (queued) or 0 (the record was there: a duplicate, nothing written).
_ENQUEUE_EVENT = f"""
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[5], KEYS[4])
redis.call('HSET', KEYS[3], CONSTANT_FIELDS, unpack(ARGV, 6))
redis.call('RPUSH', KEYS[4], ARGV[1])
if KEYS[6] then
  redis.call('HINCRBY', KEYS[6], ARGV[4], 1)
  redis.call('HSET', KEYS[7], '{LAST_WEBHOOK_FIELD}', ARGV[5])
end
return 1
"""
DEDUPE_PREFIX = "dk:seen:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# The enqueue script of each template, registered per client.
_SCRIPTS: weakref.WeakKeyDictionary[redis.Redis, dict[JobTemplate, Any]] = (
    weakref.WeakKeyDictionary()
)


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
    if role != "web":
        return redis.Redis.from_url(url, **options)
    options.update(
        socket_timeout=defaults.REDIS_WEB_SOCKET_TIMEOUT_SEC,
        socket_connect_timeout=defaults.REDIS_WEB_SOCKET_TIMEOUT_SEC,
        retry=RedisRetry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), retries=2),
    )
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=defaults.REDIS_WEB_MAX_CONNECTIONS,
        timeout=defaults.REDIS_WEB_SOCKET_TIMEOUT_SEC,
        **options,
    )
    return redis.Redis(connection_pool=pool)


class EventJob(Job):
    """RQ's Job, running a function stored under its name before a move by its new name."""

    @property
    def func(self) -> Any:
        renamed = RENAMED_FUNCTIONS.get(self.func_name or "")
        return import_attribute(renamed) if renamed else super().func


class EventQueue(Queue):
    """RQ's Queue of EventJobs, with a maintenance lock that lapses in a minute rather than
    fifteen.

    Only the worker holding this lock looks for jobs that dead workers left behind. RQ keeps
    it for 899 s, so one worker SIGKILLed while cleaning (seen in the soak run) would stall
    the recovery of every abandoned job for a quarter of an hour.
    """

    job_class = EventJob

    def acquire_maintenance_lock(self) -> bool:
        key = self.registry_cleaning_key
        ttl = defaults.MAINTENANCE_LOCK_TTL_SEC
        return bool(self.connection.set(key, 1, nx=True, ex=ttl))


def make_queue(connection: redis.Redis) -> EventQueue:
    """The one queue every event goes through (JSON jobs: readable, no pickle)."""
    return EventQueue(defaults.QUEUE_NAME, connection=connection, serializer=JSONSerializer)


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
    result_ttl_sec: int = defaults.JOB_RESULT_TTL_SEC,
) -> Enqueued:
    """Queue the event once; QueueUnavailableError when Redis cannot take it.

    An event without its object (`payload_missing`) is refused with EnvelopeError: judged,
    it would be taken for an empty opportunity, and its dedupe record would turn away the
    delivery that carries the object."""
    require_payload(event)
    job_id = job_id_for(event)
    try:
        template = _job_template(queue, job_timeout_sec, result_ttl_sec)
        keys = [
            DEDUPE_PREFIX + event.dedupe_key,
            pending_key(event),
            queue.job_class.key_for(job_id),
            queue.key,
            queue.redis_queues_keys,
        ]
        counter_field, seen_at = "", ""
        if stats is not None:
            keys += [STATS_KEY, LAST_KEY]
            counter_field, seen_at = stats.webhook_record(outcome="queued")
        args = [
            job_id,
            defaults.DEDUPE_TTL_SEC,
            pending_score(event),
            counter_field,
            seen_at,
            *_event_job_fields(event, queue),
        ]
        queued = _enqueue_script(queue.connection, template)(keys=keys, args=args)
    except RedisError as error:
        if is_out_of_memory(error):
            raise RedisFullError(_not_taken(error)) from error
        raise QueueUnavailableError(_not_taken(error)) from error
    return Enqueued(job_id=job_id, duplicate=not queued)


def _not_taken(error: RedisError) -> str:
    if not is_out_of_memory(error):
        return f"Redis did not take the event: {error}"
    # The script's first write is refused, so nothing of the event was written.
    return (
        "Redis is full (used memory reached maxmemory) and refuses writes: free memory (old "
        "history, parked jobs) or raise maxmemory (a bigger Redis plan); Close delivers the "
        f"event again. Redis said: {error}"
    )


def forget_results(target: Any, job_id: str) -> None:
    """Drop what RQ kept of the job's earlier runs (on a connection or a pipeline).

    A run that asked to wait (rate limit, busy opportunity) left a `retried` result, which
    RQ keeps as long as a failure, 30 days, and does not delete with the job: a finished
    event's outcome is in its history, so nothing of the job needs to stay."""
    target.delete(results_key(job_id))


def results_key(job_id: str) -> str:
    """The key of RQ's stream of a job's results."""
    return str(Result.get_key(job_id))  # type: ignore[no-untyped-call]


def queued_before(event: Event, *, queue: Queue) -> bool:
    """Whether this version of the event was queued before (its dedupe record is there);
    reads only. QueueUnavailableError when Redis cannot answer."""
    try:
        return bool(queue.connection.exists(DEDUPE_PREFIX + event.dedupe_key))
    except RedisError as error:
        raise QueueUnavailableError(f"Redis did not answer: {error}") from error


@dataclass(frozen=True)
class JobTemplate:
    """The fields of an event job's hash that are the same for every event (function,
    timeouts, TTLs, retries, origin, status and RQ's empty fields): names and values."""

    fields: tuple[bytes, ...]

    def script(self) -> str:
        """The enqueue script with these fields written into it."""
        return _ENQUEUE_EVENT.replace("CONSTANT_FIELDS", ", ".join(map(_lua_string, self.fields)))


def _lua_string(value: bytes) -> str:
    """A Lua string literal of exactly these bytes (anything but plain ASCII escaped)."""
    plain = {*range(0x20, 0x7F)} - {ord('"'), ord("\\")}
    return '"' + "".join(chr(b) if b in plain else f"\\{b:03d}" for b in value) + '"'


# The fields of a job's hash that differ from event to event; `_event_job_fields` writes them.
_EVENT_JOB_FIELDS = frozenset({"created_at", "enqueued_at", "data", "description"})
_TEMPLATES: dict[tuple[str, Any, int, int], JobTemplate] = {}


def _job_template(queue: Queue, timeout: int, result_ttl: int) -> JobTemplate:
    """The constant fields, as RQ's own enqueue_call writes them (once per process)."""
    cache_key = (queue.key, queue.serializer, timeout, result_ttl)
    template = _TEMPLATES.get(cache_key)
    if template is None:
        template = _TEMPLATES[cache_key] = _template_from_rq(queue, timeout, result_ttl)
    return template


def _template_from_rq(queue: Queue, timeout: int, result_ttl: int) -> JobTemplate:
    """Let RQ queue a sample event into a pipeline that is never sent (RQ may still ask
    Redis its version, once per process) and keep the fields of the hash it would write.

    Refuses to guess when RQ writes anything else than what the enqueue script writes, so
    an RQ upgrade that changes how a job is queued fails at the first webhook and in the
    tests, instead of queueing jobs RQ would not run the way it queues them."""
    sample = Event(
        id="template", object_type="opportunity", action="updated", object_id="template",
        date_created=_EPOCH, date_updated=_EPOCH,
    )  # fmt: skip
    batch = queue.connection.pipeline()
    batch.multi()  # RQ insists on a pipeline in MULTI mode; nothing is sent until execute
    try:
        _enqueue_on(
            batch, sample, queue=queue, job_id="template", timeout=timeout, result_ttl=result_ttl
        )
        commands = [command for command, _options in batch.command_stack]
    finally:
        batch.reset()
    job_key = queue.job_class.key_for("template")
    expected = [
        ("SADD", queue.redis_queues_keys, queue.key),
        ("HSET", job_key, "status", "queued"),  # repeated in the hash itself
        ("RPUSH", queue.key, "template"),
    ]
    if len(commands) != 4 or [commands[0], commands[1], commands[3]] != expected:
        raise RuntimeError(f"RQ queues a job in an unexpected way: {commands!r}")
    name, key, *pairs = commands[2]
    fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
    if (name, key) != ("HSET", job_key) or not fields.keys() >= _EVENT_JOB_FIELDS:
        raise RuntimeError(f"RQ writes a job hash unlike the one expected: {commands[2]!r}")
    constant = [(k, v) for k, v in fields.items() if k not in _EVENT_JOB_FIELDS]
    return JobTemplate(fields=tuple(_encoded(item) for pair in constant for item in pair))


def _encoded(value: str | int | bytes) -> bytes:
    """A value as redis-py sends it (bytes cost it the least work per call)."""
    if isinstance(value, bytes):
        return value
    return (repr(value) if isinstance(value, int) else value).encode()


def _event_job_fields(event: Event, queue: Queue) -> list[Any]:
    """The job hash's fields that depend on the event, as RQ's Job.to_dict makes them."""
    moment = utcformat(now())
    data = queue.serializer.dumps((JOB_FUNCTION, None, (event.to_dict(),), {}))
    return [
        "created_at", moment,
        "enqueued_at", moment,
        "data", zlib.compress(data),
        "description", _description(event),
    ]  # fmt: skip


def _description(event: Event) -> str:
    # adapters/parked.py finds a deal's parked events by it: its last word is the deal.
    return f"{event.name} {event.object_id}"


def opportunity_of_description(description: bytes | str | None) -> str | None:
    """The opportunity an event job's description names (see _description)."""
    if description is None:
        return None
    text = description.decode() if isinstance(description, bytes) else description
    return text.rpartition(" ")[2] or None


def _enqueue_script(connection: redis.Redis, template: JobTemplate) -> Any:
    """The template's script registered for this client (EVALSHA; loaded again after a
    Redis restart)."""
    scripts = _SCRIPTS.setdefault(connection, {})
    script = scripts.get(template)
    if script is None:
        script = scripts[template] = connection.register_script(template.script())
    return script


def _enqueue_on(
    pipe: Any,
    event: Event,
    *,
    queue: Queue,
    job_id: str,
    timeout: int,
    result_ttl: int = defaults.JOB_RESULT_TTL_SEC,
) -> None:
    """How dealkeeper would queue an event with RQ's own API (the template's source)."""
    queue.enqueue_call(
        JOB_FUNCTION,
        args=(event.to_dict(),),
        job_id=job_id,
        timeout=timeout,
        result_ttl=result_ttl,
        failure_ttl=defaults.JOB_FAILURE_TTL_SEC,
        retry=Retry(
            max=len(defaults.JOB_RETRY_INTERVALS_SEC),
            interval=list(defaults.JOB_RETRY_INTERVALS_SEC),
        ),
        description=_description(event),
        pipeline=pipe,
    )
