"""Log lines: JSON off a terminal, bound context, and secrets masked whatever logged them."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.observability import logs
from tests.secrets import leaked

SECRET = "api_0123456789abcdef"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure(level="INFO", secrets=[SECRET], stream=out, json_lines=True)
    logs.clear()
    yield out
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "dealkeeper":
            root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_logs_one_json_object_per_line_with_extra_fields(stream: io.StringIO) -> None:
    """The event name is the message; `extra=` fields are keys of the same object."""
    logging.getLogger("dealkeeper.test").info("plan_applied", extra={"fired": ["a"], "n": 2})

    (entry,) = lines(stream)

    assert ("plan_applied", "info", ["a"], 2) == (
        entry["event"],
        entry["level"],
        entry["fired"],
        entry["n"],
    )


def test_logs_bound_fields_ride_along_until_cleared(stream: io.StringIO) -> None:
    """bind() adds fields to every following line; clear() forgets them."""
    log = logging.getLogger("dealkeeper.test")
    logs.bind(event_id="ev_1", job_id="j1")
    log.info("first")
    logs.clear()
    log.info("second")

    first, second = lines(stream)

    assert ("ev_1", "j1") == (first["event_id"], first["job_id"])
    assert "event_id" not in second


def test_logs_secrets_are_masked_in_any_field_and_in_basic_auth_form(stream: io.StringIO) -> None:
    """The API key never reaches the output, plain or base64-encoded as in a Basic header."""
    basic = base64.b64encode(f"{SECRET}:".encode()).decode()
    log = logging.getLogger("some.library")
    log.warning("calling with %s", SECRET, extra={"headers": {"Authorization": f"Basic {basic}"}})

    text = stream.getvalue()

    assert SECRET not in text
    assert basic not in text
    assert 2 == text.count(logs.REDACTED)


@pytest.mark.allow_error_logs
def test_logs_exceptions_are_masked_too(stream: io.StringIO) -> None:
    """A traceback that mentions a secret is masked like any other text."""
    try:
        raise ValueError(f"bad key {SECRET}")
    except ValueError:
        logging.getLogger("x").exception("failed")

    assert SECRET not in stream.getvalue()


def test_logs_text_format_on_a_terminal() -> None:
    """On a terminal, lines read `time level event key=value`."""
    out = io.StringIO()
    logs.configure(level="INFO", stream=out, json_lines=False)
    logging.getLogger("x").info("rules_loaded", extra={"rules": 3, "path": "my rules"})

    line = out.getvalue().strip()

    assert line.endswith('INFO    rules_loaded rules=3 path="my rules"')


def test_logs_mask_a_hex_key_however_it_is_shown() -> None:
    """A webhook signature key logged as text, as bytes, in base64 or as a Basic header."""
    key = "5e" * 16 + "0a" * 16  # ^ and a newline: plain and escaped bytes
    out = io.StringIO()
    logs.configure(level="INFO", secrets=[key], stream=out, json_lines=True)
    raw = bytes.fromhex(key)
    try:
        logging.getLogger("dealkeeper.test").warning(
            "leaky",
            extra={"hex": key, "bytes": raw, "b64": base64.b64encode(raw).decode(),
                   "basic": base64.b64encode(f"{key}:".encode()).decode()},
        )  # fmt: skip
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "dealkeeper":
                root.removeHandler(handler)

    assert [] == leaked(out.getvalue(), (key,))
