"""Every error dealkeeper raises on purpose.

    DealkeeperError
     +-- ConfigurationError        bad environment; lists every bad variable at once
     +-- InvalidRulesError         a rules file was rejected; carries problems: list[Problem]
     +-- WebhookRejectedError      missing, bad or stale signature; not a Close event envelope
     +-- QueueUnavailableError     Redis could not take the event; the web layer answers 503
     +-- OpportunityBusyError      another worker holds the opportunity; retried later
     +-- NotYetDueError            an older event of the opportunity goes first; retried later
     +-- LoopSuspectedError        a field keeps being rewritten; the event is parked
     +-- CloseUnavailableError     dry-run without an API key: nothing can be read from Close
     +-- CloseKeyRefusedError      Close refused CLOSE_API_KEY itself (401, or 403 with /me/
     |                             refused too): the job goes back to the queue, workers pause
     +-- CloseAPIError             Close answered with an error (method, path, status, message)
          +-- CloseClientError     4xx other than 429: permanent, the job is parked
          |    +-- CloseNotFoundError   404: the opportunity is gone; the event is dropped
          +-- CloseRateLimitedError  429: retry_after_sec says when
          +-- CloseServerError     5xx, timeouts and connection failures: transient

No message ever contains an API key, a signature key or an Authorization header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class DealkeeperError(Exception):
    """Base of every error dealkeeper raises on purpose."""


class ConfigurationError(DealkeeperError):
    """The environment is wrong; `problems` holds one line per bad variable."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a rules file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class InvalidRulesError(DealkeeperError):
    """A rules file (or test file) was rejected as a whole."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class WebhookRejectedError(DealkeeperError):
    """A webhook that must not reach a worker; `status` is the HTTP answer."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class QueueUnavailableError(DealkeeperError):
    """Redis did not take the event; Close must deliver it again."""


class RedisFullError(QueueUnavailableError):
    """Redis is at maxmemory and refuses writes (noeviction): nothing of the event was
    written; room must be made before Close's retries can be taken."""


class OpportunityBusyError(DealkeeperError):
    """Another worker is applying an event of the same opportunity."""


class CloseUnavailableError(DealkeeperError):
    """Dry-run mode without CLOSE_API_KEY was asked to read from Close."""


class CloseKeyRefusedError(DealkeeperError):
    """Close refused CLOSE_API_KEY itself: a fault of the deployment, not of the event."""

    def __init__(self, message: str, *, status: int | None) -> None:
        self.status = status
        super().__init__(message)


class NotYetDueError(DealkeeperError):
    """An older event of the same opportunity is still queued or running."""

    def __init__(self, message: str, *, queued_only: bool) -> None:
        self.queued_only = queued_only  # then going to the back of the queue is enough
        super().__init__(message)


class LoopSuspectedError(DealkeeperError):
    """dealkeeper keeps rewriting one field of one opportunity: a person must look."""


class CloseAPIError(DealkeeperError):
    """Close answered a request with an error."""

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int | None,
        reason: str = "",
        detail: str = "",
        field_errors: Mapping[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.detail = detail
        self.field_errors = dict(field_errors or {})
        head = f"{status} {reason}".strip() if status is not None else reason or "request failed"
        message = f"{head} for {method} {path}"
        if detail:
            message += f": {detail}"
        super().__init__(message)


class CloseClientError(CloseAPIError):
    """A 4xx answer: repeating the request will not help."""


class CloseNotFoundError(CloseClientError):
    """404: the object no longer exists."""


class CloseRateLimitedError(CloseAPIError):
    """429: Close asks us to wait `retry_after_sec` seconds."""

    def __init__(self, *, retry_after_sec: float, **kwargs: Any) -> None:
        self.retry_after_sec = retry_after_sec
        super().__init__(**kwargs)


class CloseServerError(CloseAPIError):
    """5xx, a timeout or a broken connection: worth another try later."""
