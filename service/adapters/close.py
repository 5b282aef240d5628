"""Close's REST API: auth, timeouts, x-tz-offset, typed errors and retries.

`CloseAPI` is the narrow Protocol jobs talk to. `CloseClient` is the real thing; `DryRunClose`
logs writes instead of making them. Whether and how long to retry is decided by the pure
service.core.retry; this module only carries the decisions out (sleeps, logs, raises).
"""

from __future__ import annotations

import base64
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import service
from service.adapters.replies import decode_object, error_for, json_or_none, objects
from service.adapters.transport import NoReplyError, Reply, Transport
from service.config import defaults
from service.config.errors import CloseNotFoundError, CloseUnavailableError
from service.config.settings import DEFAULT_CLOSE_API_URL, Settings
from service.core.reconcile import is_list_edit, not_yet_taken
from service.core.retry import (
    Decision,
    RateLimitInfo,
    RetryIn,
    Success,
    classify,
    parse_rate_limit,
    rate_limit_wait_sec,
)

log = logging.getLogger("dealkeeper.close")

# Timeouts, attempts and the inline-wait limit are in service.config.defaults; these are this
# module's alone.
CLOSE_BACKOFF_BASE_SEC = 0.5
CLOSE_BACKOFF_CAP_SEC = 8.0
CLOSE_PAGE_SIZE = 100


class JSONAPI(Protocol):
    """Any Close endpoint as JSON: all that generic readers (event log, subscriptions) need."""

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`path` relative to the API base URL; the same auth, retries and errors."""
        ...


class CloseAPI(JSONAPI, Protocol):
    """The calls dealkeeper makes to Close."""

    def get_me(self) -> dict[str, Any]:
        """The user and organizations the credentials belong to."""
        ...

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The opportunity as Close holds it now."""
        ...

    def update_opportunity(
        self, opportunity_id: str, update: Mapping[str, Any], *, tz_offset_hours: float | None
    ) -> dict[str, Any]:
        """Apply `update` as a patch; returns the opportunity after it."""
        ...

    def list_opportunity_statuses(self) -> list[dict[str, Any]]:
        """Every opportunity status of every pipeline."""
        ...

    def get_opportunity_custom_fields(self) -> list[dict[str, Any]]:
        """Every custom field that can be set on an opportunity."""
        ...


def format_tz_offset(hours: float) -> str:
    """The `x-tz-offset` value in the shortest form Close documents: -5, 5.5, -2.5, 0."""
    if not math.isfinite(hours) or not -24 < hours < 24:
        raise ValueError(f"tz_offset_hours must be between -24 and 24, got {hours!r}")
    return f"{round(hours, 2) + 0.0:g}"  # + 0.0 turns -0.0 into 0.0


def path_segment(value: str) -> str:
    """`value` as one segment of a Close URL path, whatever it holds.

    Quoting keeps `/`, `?`, `#` and `%` inside the segment, but `.` and `..` need no quoting
    and would still collapse (`opportunity/../` is the API root), so they, and an empty
    value, are refused: ValueError."""
    if value in ("", ".", ".."):
        raise ValueError(f"{value!r} cannot be a path segment of a Close URL")
    return quote(value, safe="")


def opportunity_path(opportunity_id: str) -> str:
    """`opportunity/<id>/`, relative to the API base URL, the id one segment."""
    return f"opportunity/{path_segment(opportunity_id)}/"


def role_path(role_id: str) -> str:
    """`role/<id>/` (Close's Roles API), the id one segment."""
    return f"role/{path_segment(role_id)}/"


@dataclass(frozen=True)
class Exchange:
    """One HTTP attempt, as observers (metrics, status) see it: never a body or a header."""

    method: str
    path: str
    status: int | None  # None: no answer (timeout, broken connection)
    duration_sec: float
    rate_limit: RateLimitInfo | None
    wait_sec: float | None = None  # a 429's requested wait (ratelimit reset, retry-after, body)


class Throttle(Protocol):
    """Paces requests before they are sent and learns from the answers (shared limits)."""

    def before(self, method: str, path: str) -> None: ...

    def after(self, exchange: Exchange) -> None: ...


class CloseClient:
    """CloseAPI over HTTP, with Basic auth, explicit timeouts and in-process retries."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_CLOSE_API_URL,
        connect_timeout_sec: float = defaults.CLOSE_CONNECT_TIMEOUT_SEC,
        read_timeout_sec: float = defaults.CLOSE_READ_TIMEOUT_SEC,
        max_attempts: int = defaults.CLOSE_MAX_ATTEMPTS,
        max_inline_wait_sec: float = defaults.MAX_INLINE_RETRY_WAIT_SEC,
        backoff_base_sec: float = CLOSE_BACKOFF_BASE_SEC,
        backoff_cap_sec: float = CLOSE_BACKOFF_CAP_SEC,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        observer: Callable[[Exchange], None] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._api_key = api_key
        self._transport = Transport(
            self.base_url, connect_sec=connect_timeout_sec, read_sec=read_timeout_sec
        )
        self._max_attempts = max_attempts
        self._max_inline_wait_sec = max_inline_wait_sec
        self._backoff = (backoff_base_sec, backoff_cap_sec)
        self._sleep, self._rand, self._clock = sleep, rand, clock
        # Basic auth written once. Never logged: only _send reads it, __repr__ leaves it out.
        self._headers = {
            "accept": "application/json",
            "user-agent": f"dealkeeper/{service.__version__}",
            "authorization": _basic_auth(api_key),
        }
        self.last_rate_limit: RateLimitInfo | None = None
        self.last_response_at: float | None = None
        # The `date` header of that answer: Close's clock, for `dealkeeper doctor`.
        self.last_date_header: str | None = None
        self.observer = observer
        self.throttle = throttle

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CloseClient:
        """A client for settings.close_api_key and settings.close_api_url."""
        if not settings.close_api_key:
            raise ValueError("settings carry no Close API key")
        return cls(settings.close_api_key, base_url=settings.close_api_url, **options)

    def __repr__(self) -> str:
        return f"CloseClient(base_url={self.base_url!r})"  # never the key

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._transport.close()

    def __enter__(self) -> CloseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def get_me(self) -> dict[str, Any]:
        """GET me/."""
        return self._request_object("GET", "me/")

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """GET opportunity/<id>/; CloseNotFoundError when it is gone."""
        return self._request_object("GET", opportunity_path(opportunity_id))

    def update_opportunity(
        self, opportunity_id: str, update: Mapping[str, Any], *, tz_offset_hours: float | None
    ) -> dict[str, Any]:
        """PUT opportunity/<id>/ with x-tz-offset (Close's "today" for date_won) when given.

        A PUT is repeated after a timeout or a 5xx, which Close may answer after taking it
        (Close's own client repeats 502 and 504 only for GET). Setting fields to values is
        idempotent: a repeat leaves the deal as the first PUT did. An `.add` or `.remove`
        is not known to be (Close does not say what a second `.add` of a value does), so
        before repeating one the deal is read again and the edits it shows are left out.
        """
        headers = (
            {} if tz_offset_hours is None else {"x-tz-offset": format_tz_offset(tz_offset_hours)}
        )
        path = opportunity_path(opportunity_id)
        body = dict(update)
        reread = None
        if any(is_list_edit(key) for key in body):
            reread = partial(self.get_opportunity, opportunity_id)
        return self._request_object("PUT", path, json_body=body, headers=headers, reread=reread)

    def list_opportunity_statuses(self) -> list[dict[str, Any]]:
        """Every page of GET status/opportunity/."""
        return self._get_all("status/opportunity/")

    def get_opportunity_custom_fields(self) -> list[dict[str, Any]]:
        """GET custom_field_schema/opportunity/ (regular and shared fields), falling back
        to the paginated custom_field/opportunity/ where the schema endpoint is missing."""
        try:
            schema = self._request_object("GET", "custom_field_schema/opportunity/")
        except CloseNotFoundError:
            return self._get_all("custom_field/opportunity/")
        return objects(schema.get("fields"))

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Any other endpoint (`path` relative to the base URL), with the same auth, timeouts,
        retries and errors as the named methods."""
        return self._request_object(method, path, params=params, json_body=body)

    def _get_all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            params = {"_skip": str(len(items)), "_limit": str(CLOSE_PAGE_SIZE)}
            page = self._request_object("GET", path, params=params)
            data = objects(page.get("data"))
            items.extend(data)
            if not data or not page.get("has_more"):
                return items

    def _request_object(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        reread: Callable[[], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """`reread`: for a write that must not be repeated blindly, reads the object again
        before a repeat; the list edits it shows are not sent again."""
        attempt = 0
        while True:
            attempt += 1
            response, failure = self._send(method, path, params, json_body, headers)
            decision = self._decide(method, attempt, response)
            if isinstance(decision, Success) and response is not None:
                return decode_object(method=method, path=path, response=response)
            if not isinstance(decision, RetryIn):
                raise error_for(
                    decision,
                    method=method,
                    path=path,
                    response=response,
                    failure=failure,
                    secret=self._api_key,
                ) from failure
            _log_retry(method, path, response, attempt, decision.sec)
            self._sleep(decision.sec)
            # A 429 was not processed; any other failure may have come after Close took it.
            if reread is not None and json_body is not None and _may_have_landed(response):
                current = reread()
                json_body = not_yet_taken(json_body, current)
                if not json_body:
                    log.info("close_write_found_taken", extra={"method": method, "path": path})
                    return current

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[Reply | None, NoReplyError | None]:
        if self.throttle is not None:
            self.throttle.before(method, path)
        started = time.perf_counter()
        try:
            response = self._transport.send(
                method,
                self.base_url + path,
                params=params,
                json_body=json_body,
                headers={**self._headers, **headers} if headers else self._headers,
            )
        except NoReplyError as exc:
            self._observe(Exchange(method, path, None, time.perf_counter() - started, None))
            return None, exc
        self.last_rate_limit = parse_rate_limit(response.headers)
        self.last_response_at = self._clock()
        self.last_date_header = response.headers.get("date")
        duration = time.perf_counter() - started
        wait = self._wait_sec(response) if response.status == 429 else None
        exchange = Exchange(
            method, path, response.status, duration, self.last_rate_limit, wait_sec=wait
        )
        self._observe(exchange)
        return response, None

    def _observe(self, exchange: Exchange) -> None:
        if self.throttle is not None:
            self.throttle.after(exchange)
        if self.observer is not None:
            self.observer(exchange)

    def _wait_sec(self, response: Reply) -> float | None:
        body = json_or_none(response)
        return rate_limit_wait_sec(response.headers, body, now_sec=self._clock())

    def _decide(self, method: str, attempt: int, response: Reply | None) -> Decision:
        status = None if response is None else response.status
        wait_sec = self._wait_sec(response) if response is not None and status == 429 else None
        return classify(
            status=status,
            method=method,
            attempt=attempt,
            max_attempts=self._max_attempts,
            wait_sec=wait_sec,
            max_inline_wait_sec=self._max_inline_wait_sec,
            rand=self._rand(),
            base_sec=self._backoff[0],
            cap_sec=self._backoff[1],
        )


class DryRunClose:
    """CloseAPI for dry-run mode: writes are logged as `close_call_skipped`, never sent.

    Reads go to `reader` when there is one (a key is set, DEALKEEPER_DRY_RUN=1 forces dry
    run); without one (no CLOSE_API_KEY) every read raises CloseUnavailableError rather than
    return made-up data. MetadataCache is given no client in that case and answers None.
    """

    def __init__(self, reader: CloseAPI | None = None) -> None:
        self._reader = reader

    def get_me(self) -> dict[str, Any]:
        """The reader's answer; CloseUnavailableError without a reader."""
        return self._require_reader().get_me()

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The reader's answer; CloseUnavailableError without a reader."""
        return self._require_reader().get_opportunity(opportunity_id)

    def update_opportunity(
        self, opportunity_id: str, update: Mapping[str, Any], *, tz_offset_hours: float | None
    ) -> dict[str, Any]:
        """Log the PUT that would have been made; returns {}."""
        tz_offset = None if tz_offset_hours is None else format_tz_offset(tz_offset_hours)
        extra = {
            "method": "PUT",
            "path": opportunity_path(opportunity_id),
            "update": dict(update),
            "tz_offset": tz_offset,
        }
        log.info("close_call_skipped", extra=extra)
        return {}

    def list_opportunity_statuses(self) -> list[dict[str, Any]]:
        """The reader's answer; CloseUnavailableError without a reader."""
        return self._require_reader().list_opportunity_statuses()

    def get_opportunity_custom_fields(self) -> list[dict[str, Any]]:
        """The reader's answer; CloseUnavailableError without a reader."""
        return self._require_reader().get_opportunity_custom_fields()

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Reads go to the reader; anything else is logged and skipped like a write."""
        if method.upper() == "GET":
            return self._require_reader().request_json(method, path, params=params)
        log.info("close_call_skipped", extra={"method": method.upper(), "path": path})
        return {}

    def _require_reader(self) -> CloseAPI:
        if self._reader is None:
            raise CloseUnavailableError("dry-run without CLOSE_API_KEY cannot read from Close")
        return self._reader


def _basic_auth(api_key: str) -> str:
    """The Authorization value Close expects: the key as user, an empty password."""
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode("ascii")


def close_api_for(settings: Settings, **options: Any) -> CloseAPI:
    """The client settings call for: real, dry-run reading through a real client, or offline."""
    if not settings.close_api_key:
        return DryRunClose()
    client = CloseClient.from_settings(settings, **options)
    return DryRunClose(reader=client) if settings.dry_run else client


def _may_have_landed(response: Reply | None) -> bool:
    return response is None or response.status != 429


def _log_retry(
    method: str, path: str, response: Reply | None, attempt: int, wait_sec: float
) -> None:
    status = None if response is None else response.status
    extra = {
        "method": method,
        "path": path,
        "status": status,
        "attempt": attempt,
        "wait_sec": round(wait_sec, 3),
    }
    log.warning("close_request_retried", extra=extra)
