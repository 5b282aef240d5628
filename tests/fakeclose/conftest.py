"""Fixtures for FakeClose tests: a running fake, raw HTTP to it, and a webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from fakeclose import FakeClose


class Api:
    """Plain HTTP to a FakeClose, authenticated like a Close API client."""

    def __init__(self, fake: FakeClose, *, key: str = FakeClose.DEFAULT_API_KEY) -> None:
        self.base_url = fake.url
        self.session = requests.Session()
        self.session.auth = (key, "")

    def request(self, method: str, path: str, **options: Any) -> requests.Response:
        """`path` relative to /api/v1/; options go to requests."""
        return self.session.request(method, self.base_url + path, timeout=5, **options)

    def get(self, path: str, **params: Any) -> requests.Response:
        """GET with query parameters."""
        return self.request("GET", path, params=params)

    def put(self, path: str, body: Any, *, tz_offset: str | None = None) -> requests.Response:
        """PUT a JSON body, with x-tz-offset when given."""
        headers = {} if tz_offset is None else {"x-tz-offset": tz_offset}
        return self.request("PUT", path, json=body, headers=headers)


class WebhookReceiver:
    """A loopback HTTP endpoint that records POSTs and answers from a list of statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Where to deliver."""
        return f"http://127.0.0.1:{self._server.server_port}/webhooks/close"

    def start(self) -> WebhookReceiver:
        """Serve from a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeClose]:
    """A running FakeClose with the default key."""
    with FakeClose() as running:
        yield running


@pytest.fixture
def api(fake: FakeClose) -> Iterator[Api]:
    """HTTP to `fake` with the default key."""
    client = Api(fake)
    yield client
    client.session.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook endpoint answering 200 unless told otherwise through `.statuses`."""
    running = WebhookReceiver().start()
    yield running
    running.stop()
