"""The Procfile's web command, run as Heroku runs it (bash -c), logs like the rest of
dealkeeper: one JSON object per line, secrets masked, LOG_LEVEL honoured, WEB_CONCURRENCY
workers, and a clean exit on SIGTERM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from service.intake import signatures
from tests.e2e.conftest import API_KEY, KEY_HEX, Web
from tests.waiting import wait_for


def test_gunicorn_logs_are_json_lines_with_access_fields(start_web: Callable[..., Web]) -> None:
    """gunicorn's own start-up and access lines are JSON like ours; a webhook's access line has
    method, path, status and duration, and no header, signature or body."""
    web = start_web(LOG_LEVEL="INFO", WEB_CONCURRENCY="2")
    body = b'{"event": {"id": "ev_secret_body_marker"}}'
    headers = signatures.signed_headers(body, key=b"\x01" * 32, timestamp=int(time.time()))

    requests.post(f"{web.url}/webhooks/close", data=body, headers=headers, timeout=5)
    wait_for(lambda: _served(web, "/webhooks/close"), what="the webhook's access line")
    exit_code = web.stop()

    lines, text = web.lines(), web.log.read_text()
    [served] = _served(web, "/webhooks/close")
    assert ("POST", 401) == (served["method"], served["status"])
    assert served["duration_ms"] >= 0
    gunicorn = [x["event"] for x in lines if x["logger"] == "gunicorn.error"]
    assert gunicorn[0].startswith("Starting gunicorn")
    for secret in (API_KEY, KEY_HEX, headers[signatures.HASH_HEADER], "ev_secret_body_marker"):
        assert secret not in text
    assert 0 == exit_code


def test_gunicorn_runs_web_concurrency_workers(start_web: Callable[..., Web]) -> None:
    """Without --workers in the Procfile, gunicorn boots WEB_CONCURRENCY workers."""
    web = start_web(WEB_CONCURRENCY="3")

    booted = wait_for(lambda: len(_booted(web)) == 3 and _booted(web), what="three workers")

    assert 3 == len(booted)


def test_gunicorn_honours_log_level(start_web: Callable[..., Web]) -> None:
    """LOG_LEVEL=WARNING keeps gunicorn's info lines out; DEBUG lets probe access lines in."""
    quiet = start_web(LOG_LEVEL="WARNING", WEB_CONCURRENCY="1")
    chatty = start_web(LOG_LEVEL="DEBUG", WEB_CONCURRENCY="1")

    for web in (quiet, chatty):
        requests.get(f"{web.url}/healthz", timeout=5)
    wait_for(lambda: _served(chatty, "/healthz"), what="the probe's debug access line")
    quiet.stop()

    assert [] == [x for x in quiet.lines() if x["level"] in ("debug", "info")]
    assert "debug" == _served(chatty, "/healthz")[0]["level"]


def _served(web: Web, path: str) -> list[dict[str, Any]]:
    return [x for x in web.lines() if x["event"] == "request_served" and x["path"] == path]


def _booted(web: Web) -> list[dict[str, Any]]:
    return [x for x in web.lines() if x["event"].startswith("Booting worker")]


def test_gunicorn_request_fields_stay_on_that_request_lines(
    start_web: Callable[..., Web],
) -> None:
    """A webhook's event id is on its own access line, not on the lines that follow it
    (the next probe's access line, the worker's exit)."""
    web = start_web(LOG_LEVEL="DEBUG", WEB_CONCURRENCY="1")
    body = (
        b'{"event": {"id": "ev_leak_check", "object_type": "opportunity", "action": "updated",'
        b' "object_id": "oppo_leak", "date_created": "2026-11-28T03:30:00Z", "data": {}}}'
    )
    headers = signatures.signed_headers(
        body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())
    )

    answer = requests.post(f"{web.url}/webhooks/close", data=body, headers=headers, timeout=5)
    requests.get(f"{web.url}/healthz", timeout=5)
    wait_for(lambda: _served(web, "/healthz"), what="the probe's access line")
    web.stop()

    [served] = _served(web, "/webhooks/close")
    assert (202, "ev_leak_check") == (answer.status_code, served.get("event_id"))
    after = web.lines()[web.lines().index(served) + 1 :]
    assert after and [] == [line for line in after if "event_id" in line]
