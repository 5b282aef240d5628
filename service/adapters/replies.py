"""How a reply from Close becomes data or one typed error.

The status -> decision table lives in service.core.retry; the decision -> exception table lives
here; close.py only moves requests and replies between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.adapters.transport import NoReplyError, Reply
from service.config.errors import (
    CloseAPIError,
    CloseClientError,
    CloseNotFoundError,
    CloseRateLimitedError,
    CloseServerError,
)
from service.core.retry import Decision, NotFound, Permanent, RateLimited, Transient

ERROR_DETAIL_MAX_CHARS = 300

_ERROR_FOR_DECISION: Mapping[type[Decision], type[CloseAPIError]] = {
    Permanent: CloseClientError,
    NotFound: CloseNotFoundError,
    RateLimited: CloseRateLimitedError,
    Transient: CloseServerError,
}


def error_for(
    decision: Decision,
    *,
    method: str,
    path: str,
    response: Reply | None,
    failure: NoReplyError | None,
    secret: str,
) -> CloseAPIError:
    """The exception that carries `decision` out of the client; `secret` is masked."""
    error_class = _ERROR_FOR_DECISION.get(type(decision), CloseServerError)
    if response is None:
        reason = "timeout" if failure is not None and failure.timeout else "connection error"
        detail = decision.reason if isinstance(decision, Transient | Permanent) else ""
        return error_class(method=method, path=path, status=None, reason=reason, detail=detail)
    detail, field_errors = close_error_message(response.text, json_or_none(response))
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": response.status,
        "reason": response.reason or "",
        "detail": detail.replace(secret, "***") if secret else detail,  # should Close echo it
        "field_errors": field_errors,
    }
    if isinstance(decision, RateLimited):
        return CloseRateLimitedError(retry_after_sec=decision.sec, **fields)
    return error_class(**fields)


def decode_object(*, method: str, path: str, response: Reply) -> dict[str, Any]:
    """The JSON object of a 2xx reply ({} for an empty one)."""
    if response.status == 204 or not response.content:
        return {}
    payload = json_or_none(response)
    if not isinstance(payload, dict):
        raise CloseServerError(
            method=method,
            path=path,
            status=response.status,
            reason=response.reason or "",
            detail="expected a JSON object in the reply",
        )
    return payload


def close_error_message(text: str, payload: object) -> tuple[str, dict[str, Any]]:
    """Close's own words from an error body, and its field-errors (closeio-api's reading)."""
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            error = error.get("message")
        if isinstance(error, str) and error:
            return _truncate(error), {}
        errors = payload.get("errors")
        field_errors = payload.get("field-errors")
        field_errors = dict(field_errors) if isinstance(field_errors, Mapping) else {}
        parts = [str(e) for e in errors] if isinstance(errors, list) else []
        parts += [f"{name}: {message}" for name, message in field_errors.items()]
        if parts:
            return _truncate("; ".join(parts)), field_errors
    return _truncate(text.strip()), {}


def json_or_none(response: Reply) -> object:
    """The parsed body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def objects(value: object) -> list[dict[str, Any]]:
    """The JSON objects in a list (`data`, `fields`); anything else is no items."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _truncate(text: str) -> str:
    if len(text) <= ERROR_DETAIL_MAX_CHARS:
        return text
    return text[: ERROR_DETAIL_MAX_CHARS - 1] + "…"
