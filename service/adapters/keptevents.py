"""An event as dealkeeper itself still holds it, for `dealkeeper test --add-case`.

A job carries its whole event (`Event.to_dict`) while it waits in the queue, waits for a
retry, or is parked, and its id starts with the event's id (`queue.job_id_for`). A finished
job leaves nothing of its event, and the history (`adapters/history.py`) keeps what was
done, not the deal: once an event is finished, only Close's event log still has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from service.core.events import is_close_id

# How many job keys a SCAN asks Redis to look at per round trip: a CLI's one-off search.
SCAN_BATCH = 1000


class KeptEvents:
    """Looks events up in the jobs of one Redis; a Redis that does not answer is told to
    `on_error` and counts as holding nothing (the caller has Close's log to go by)."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        on_error: Callable[[redis.RedisError], None] = lambda _: None,
    ) -> None:
        self.connection = connection
        self.on_error = on_error

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The event as the newest job holding it has it; None when none does."""
        try:
            return kept_event(self.connection, event_id)
        except redis.RedisError as error:
            self.on_error(error)
            return None


def kept_event(connection: redis.Redis, event_id: str) -> dict[str, Any] | None:
    """The newest version (by date_updated) of `event_id` among the jobs in Redis; None when
    no job holds it."""
    if not is_close_id(event_id):  # also keeps glob characters out of the pattern
        return None
    pattern = Job.key_for(f"{event_id}-") + "*"
    found = []
    for key in connection.scan_iter(match=pattern, count=SCAN_BATCH):
        job_id = (key.decode() if isinstance(key, bytes) else str(key)).split(":", 2)[-1]
        event = _event_of(connection, job_id)
        if event is not None and event.get("id") == event_id:
            found.append(event)
    return max(found, key=lambda e: str(e.get("date_updated")), default=None)


def _event_of(connection: redis.Redis, job_id: str) -> dict[str, Any] | None:
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except (NoSuchJobError, DeserializationError, ValueError):
        return None  # gone since the scan, or not a job RQ can read back: no case from it
    event = job.args[0] if job.args else None
    return event if isinstance(event, dict) else None
