"""A flood of unsigned posts against the Procfile's web process, as Heroku runs it: it is
refused, and it cannot delay one signed delivery. Before issue 19 it shut intake for the
rest of the minute (0 of 10 signed deliveries accepted after 3,000 unsigned posts)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import requests

from service.commands.cli import sample_event
from service.intake import signatures
from tests.e2e.conftest import KEY_HEX, Web

FLOOD = 1500  # past a web process's whole budget of refusals for a minute (1,200)
# Each request's own wait: Close's timeout is longer; this only stops a hung test.
ANSWER_WAIT_SEC = 30.0


def signed_delivery(web: Web, session: requests.Session, number: int) -> int:
    event = sample_event(f"oppo_flood_{number}", now=time.time())
    event["event"]["id"] = f"ev_flood_{number}"
    body = json.dumps(event).encode()
    headers = signatures.signed_headers(
        body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())
    )
    answer = session.post(
        f"{web.url}/webhooks/close", data=body, headers=headers, timeout=ANSWER_WAIT_SEC
    )
    return answer.status_code


def test_unsigned_flood_with_rotating_forwarded_for_leaves_signed_deliveries_accepted(
    start_web: Callable[..., Web],
) -> None:
    """1,500 unsigned posts, each claiming another address behind Heroku's router, are all
    refused with 401; the ten signed deliveries after them are all queued (202)."""
    web = start_web(WEB_CONCURRENCY="1", DEALKEEPER_PROXIES="1", LOG_LEVEL="WARNING")
    junk = json.dumps(sample_event("oppo_junk", now=time.time())).encode()
    with requests.Session() as session:
        refused = {
            session.post(
                f"{web.url}/webhooks/close",
                data=junk,
                headers={"X-Forwarded-For": f"198.51.{n // 256}.{n % 256}"},
                timeout=ANSWER_WAIT_SEC,
            ).status_code
            for n in range(FLOOD)
        }
        accepted = [signed_delivery(web, session, n) for n in range(10)]

    assert [202] * 10 == accepted
    assert {401} == refused
