"""How the Close client reaches Close: proxies and CA bundles read from the environment
once (by requests' rules), TLS verified, redirects never followed. Real servers on loopback:
a FakeClose, a TLS proxy in front of it, a recording HTTP proxy, a redirecting server."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.config.errors import CloseClientError, CloseServerError, ConfigurationError
from tests.adapters.conftest import API_KEY
from tests.tls import TLSProxy

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class Recorder(ThreadingHTTPServer):
    """Answers every request with one fixed reply and remembers what it was asked."""

    daemon_threads = True

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.reply = (status, headers, body)
        self.seen: list[tuple[str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _RecordingHandler(BaseHTTPRequestHandler):
    server: Recorder

    def _answer(self) -> None:
        self.server.seen.append((self.requestline, {k.lower(): v for k, v in self.headers.items()}))
        status, headers, body = self.server.reply
        self.send_response(status)
        for name, value in {**headers, "content-length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def recorder() -> Iterator[Callable[..., Recorder]]:
    servers: list[Recorder] = []

    def start(
        status: int = 200, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Recorder:
        servers.append(Recorder(status, headers or {}, body))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def https_close(fake_close: FakeClose, certificate: tuple[Path, Path]) -> Iterator[str]:
    """The fake's API base URL over TLS with a self-signed certificate for localhost."""
    port = urlsplit(fake_close.url).port
    assert port is not None
    proxy = TLSProxy(port, cert=certificate[0], key=certificate[1])
    yield f"https://localhost:{proxy.port}/api/v1/"
    proxy.close()


def _client(base_url: str) -> CloseClient:
    return CloseClient(API_KEY, base_url=base_url, max_attempts=1, connect_timeout_sec=2.0)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_https_is_verified_against_the_ca_bundle_named_in_requests_ca_bundle(
    https_close: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    with _client(https_close) as client:
        assert "user_" in client.get_me()["id"]


def test_https_with_a_certificate_nobody_vouches_for_is_refused(
    https_close: str, fake_close: FakeClose
) -> None:
    with _client(https_close) as client, pytest.raises(CloseServerError) as caught:
        client.get_me()
    assert (None, "connection error", []) == (
        caught.value.status,
        caught.value.reason,
        fake_close.requests_matching("GET", "me/"),
    )


def test_an_http_proxy_from_the_environment_is_used_with_its_credentials(
    recorder: Callable[..., Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read once, when the client is made: a later change of the environment is not seen."""
    proxy = recorder(
        200, {"content-type": "application/json"}, json.dumps({"id": "user_1"}).encode()
    )
    host_port = proxy.url.removeprefix("http://")
    monkeypatch.setenv("HTTP_PROXY", f"http://alice:p%40ss@{host_port}")
    client = _client("http://api.close.invalid/api/v1/")
    monkeypatch.delenv("HTTP_PROXY")

    with client:
        answer = client.get_me()

    line, headers = proxy.seen[0]
    assert ({"id": "user_1"}, "GET http://api.close.invalid/api/v1/me/ HTTP/1.1") == (answer, line)
    assert (_basic("alice:p@ss"), _basic(f"{API_KEY}:")) == (
        headers["proxy-authorization"],
        headers["authorization"],
    )


def test_no_proxy_sends_close_s_host_direct(
    fake_close: FakeClose, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a proxy address where nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with _client(fake_close.url) as client:
        assert "user_" in client.get_me()["id"]


def test_a_socks_proxy_is_refused_at_start_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://bob:secret@127.0.0.1:1080")
    with pytest.raises(ConfigurationError, match="HTTPS_PROXY to an HTTP\\(S\\) proxy") as caught:
        _client("https://api.close.com/api/v1/")
    assert "secret" not in str(caught.value)


def test_a_redirect_is_not_followed_and_not_taken_for_success(
    recorder: Callable[..., Recorder],
) -> None:
    """Following it could carry the API key to another host, and a PUT answered 301 changed
    nothing: the write fails visibly instead."""
    elsewhere = recorder(200, {"content-type": "application/json"}, b"{}")
    redirecting = recorder(301, {"location": f"{elsewhere.url}/api/v1/opportunity/oppo_1/"})
    with _client(f"{redirecting.url}/api/v1/") as client, pytest.raises(CloseClientError) as caught:
        client.update_opportunity("oppo_1", {"confidence": 5}, tz_offset_hours=None)
    assert (301, 1, []) == (caught.value.status, len(redirecting.seen), elsewhere.seen)


def test_a_compressed_answer_is_asked_for_and_read(recorder: Callable[..., Recorder]) -> None:
    """Listings of a hundred deals come gzip-compressed when asked; the client asks."""
    body = gzip.compress(json.dumps({"id": "user_1"}).encode())
    server = recorder(200, {"content-type": "application/json", "content-encoding": "gzip"}, body)
    with _client(f"{server.url}/api/v1/") as client:
        answer = client.get_me()
    assert ({"id": "user_1"}, "gzip, deflate") == (answer, server.seen[0][1]["accept-encoding"])
