"""Logging on the standard library, with structlog's habits.

- One JSON object per line off a terminal, `key=value` text on one.
- Fields bound per request or job (`bind`) ride along on every line until `clear`.
- Every secret the settings know is masked in every line, whatever logged it.

`configure()` is called by each entrypoint, never at import.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from service.config.settings import Settings

REDACTED = "[redacted]"
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "dealkeeper_log_context", default=MappingProxyType({})
)
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def bind(**fields: Any) -> None:
    """Add fields to every following log line of this request or job."""
    _context.set({**_context.get(), **fields})


def clear() -> None:
    """Forget the bound fields (start of a request or a job)."""
    _context.set({})


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def secret_variants(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret as it could appear in text: plain, inside a Basic auth header, in
    base64, and for a hex key its bytes as Python shows them."""
    found: list[str] = []
    for secret in secrets:
        if len(secret) < 6:  # too short to mask without mangling ordinary words
            continue
        found += [secret, base64.b64encode(f"{secret}:".encode()).decode()]
        found.append(base64.b64encode(secret.encode()).decode())
        try:
            raw = bytes.fromhex(secret)
        except ValueError:
            continue
        shown = repr(raw)[2:-1]  # with \x escapes, which a JSON line doubles
        found += [shown, json.dumps(shown)[1:-1], base64.b64encode(raw).decode()]
    return tuple(found)


class Redactor:
    """Masks every known secret in a piece of text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = secret_variants(secrets)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Bound context plus the `extra=` fields of one record."""
    fields = dict(getattr(record, "context", {}))
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and key != "context":
            fields[key] = value
    return fields


class ContextFilter(logging.Filter):
    """Attaches the bound context to each record (structlog's merge_contextvars)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "context"):
            record.context = dict(_context.get())
        return True


def install_context_factory() -> None:
    """Attach the bound context to every record when it is made (as `record.context`), so
    every handler, pytest's caplog included, sees the bound fields."""
    current = logging.getLogRecordFactory()
    if getattr(current, "dealkeeper", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.context = dict(_context.get())
        return record

    make.dealkeeper = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


class JSONFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        # A field named like one of these must not hide the line's own event name or level.
        entry.update((k, v) for k, v in record_fields(record).items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`time level event key=value ...` for people at a terminal."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={_text_value(v)}" for k, v in record_fields(record).items())
        line = f"{_timestamp(record.created)} {record.levelname:<7} {record.getMessage()} {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redact(line.rstrip())


def configure(
    *,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    json_lines: bool | None = None,
) -> None:
    """Route every log line (ours, gunicorn's, RQ's) through one redacting handler."""
    install_context_factory()
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json_lines is None else json_lines
    redact = Redactor(secrets)
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter(redact) if use_json else TextFormatter(redact))
    handler.set_name("dealkeeper")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "dealkeeper":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


def _timestamp(created: float) -> str:
    millis = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


def configure_for(settings: Settings, *, stream: TextIO | None = None) -> None:
    """`configure` with the level and secrets of the given settings."""
    configure(level=settings.log_level, secrets=settings.secret_strings(), stream=stream)
