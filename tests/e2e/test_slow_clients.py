"""Slow and stalled clients against the Procfile's web process: they cost a connection each,
never the intake. With gunicorn's sync workers two sockets held every delivery for 30 s."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress

import pytest
import redis
import requests

from service.commands.cli import sample_event
from service.config import defaults
from service.intake import signatures
from tests.e2e.conftest import KEY_HEX, Web
from tests.waiting import wait_for

SLOW_CLIENTS = 50
# How long a test waits for the server's answer to a stalled client. The body limit is
# WEBHOOK_BODY_READ_SEC (5 s); the rest is room for a busy two-core machine.
ANSWER_WAIT_SEC = 30.0
# A delivery beside the stalled clients: Close's own timeout is longer, but the fault this
# guards against held each one for gunicorn's 30 s worker timeout.
DELIVERY_MAX_SEC = 2.0
DELIVERY_MEDIAN_SEC = 0.1
BURST = 60


def open_stalled(web: Web, head: bytes) -> socket.socket:
    """A connection that sends `head` and then nothing."""
    connection = socket.create_connection(("127.0.0.1", web.port), timeout=ANSWER_WAIT_SEC)
    connection.sendall(head)
    return connection


def headers_then_no_body(length: int = 100_000) -> bytes:
    return (
        b"POST /webhooks/close HTTP/1.1\r\nHost: dealkeeper\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


def answer_of(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset, when it closes
    with bytes of ours unread, ends it too)."""
    received = b""
    with suppress(ConnectionResetError):
        while chunk := connection.recv(4096):
            received += chunk
    return received


def deliver(web: Web, number: int) -> tuple[int, float]:
    event = sample_event(f"oppo_slow_{number}", now=time.time())
    event["event"]["id"] = f"ev_slow_{number}"  # the sample's id is the millisecond
    body = json.dumps(event).encode()
    headers = signatures.signed_headers(
        body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())
    )
    started = time.monotonic()
    answer = requests.post(
        f"{web.url}/webhooks/close", data=body, headers=headers, timeout=ANSWER_WAIT_SEC
    )
    return answer.status_code, time.monotonic() - started


@pytest.fixture
def web(start_web: Callable[..., Web]) -> Iterator[Web]:
    yield start_web(WEB_CONCURRENCY="2", LOG_LEVEL="INFO")


def test_stalled_clients_do_not_hold_up_deliveries(web: Web) -> None:
    """50 clients that sent headers and no body, and 10 that never finish their headers, while
    signed deliveries keep coming: every delivery is queued (202), fast."""
    with ExitStack() as stack:
        for _ in range(SLOW_CLIENTS):
            stack.enter_context(open_stalled(web, headers_then_no_body()))
        for _ in range(10):
            stack.enter_context(open_stalled(web, b"POST /webhooks/close HTTP/1.1\r\nHost: x"))

        answers = [deliver(web, number) for number in range(20)]

    statuses = [status for status, _ in answers]
    seconds = sorted(spent for _, spent in answers)
    print(f"deliveries beside stalled clients: median {statistics.median(seconds) * 1000:.1f} ms")
    assert [202] * 20 == statuses
    assert seconds[-1] < DELIVERY_MAX_SEC
    assert statistics.median(seconds) < DELIVERY_MEDIAN_SEC


def test_a_stalled_body_is_answered_408_and_closed(web: Web) -> None:
    """The body must arrive within WEBHOOK_BODY_READ_SEC of the headers; then 408, the
    connection closed (what follows is not read as a request), and a WARNING, not an error."""
    started = time.monotonic()
    with open_stalled(web, headers_then_no_body(100) + b'{"event": ') as connection:
        answer = answer_of(connection)
    waited = time.monotonic() - started

    status_line, _, rest = answer.partition(b"\r\n")
    assert b"HTTP/1.1 408 REQUEST TIMEOUT" == status_line
    assert b"the body did not arrive within 5 s of the headers" in rest
    assert waited >= defaults.WEBHOOK_BODY_READ_SEC
    rejected = wait_for(lambda: _logged(web, "webhook_rejected"), what="the rejection's line")
    assert [("warning", 408)] == [(x["level"], x["status"]) for x in rejected]
    assert [] == [x for x in web.lines() if x["level"] in ("error", "critical")]


def test_a_trickling_body_is_cut_off_at_the_limit(web: Web) -> None:
    """A client sending one byte every half second never lets a single read time out; the
    limit is on the whole body, so it is answered 408 all the same."""
    stop = threading.Event()
    with open_stalled(web, headers_then_no_body(10_000)) as connection:

        def trickle() -> None:
            while not stop.wait(0.5):
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        try:
            answer = answer_of(connection)
        finally:
            stop.set()
            feeder.join()

    assert answer.startswith(b"HTTP/1.1 408 ")


def test_headers_that_never_end_are_dropped(web: Web) -> None:
    """A request line and headers that never finish (slowloris) are dropped after gunicorn's
    keepalive, without an answer."""
    with open_stalled(web, b"POST /webhooks/close HTTP/1.1\r\nHost: x\r\n") as connection:
        assert b"" == answer_of(connection)


def _logged(web: Web, event: str) -> list[dict[str, object]]:
    return [x for x in web.lines() if x["event"] == event]


def test_a_burst_of_deliveries_shares_a_few_redis_connections(
    start_web: Callable[..., Web], redis_client: redis.Redis
) -> None:
    """Many deliveries at once in one web process (gevent serves them side by side) use at
    most REDIS_WEB_MAX_CONNECTIONS connections to Redis, not one each: Heroku Redis mini
    allows 20 in all."""
    before = len(redis_client.client_list())
    web = start_web(WEB_CONCURRENCY="1")

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        statuses = [status for status, _ in pool.map(lambda n: deliver(web, n), range(BURST))]
    opened = len(redis_client.client_list()) - before

    assert ([202] * BURST, True) == (statuses, 0 < opened <= defaults.REDIS_WEB_MAX_CONNECTIONS)
