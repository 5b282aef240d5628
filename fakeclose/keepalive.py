"""A small threaded WSGI server that keeps HTTP/1.1 connections open, for the fake Close.

werkzeug's development server always answers `Connection: close`, so every request a client
made to the fake paid a new TCP connection and a new thread, and benchmarks measured the
fake's reconnects rather than dealkeeper. Close's API keeps connections alive, and so does
this server: one thread per connection, many requests on it, bodies framed by
Content-Length. It serves what the fake needs (no chunked request bodies, no TLS); on stop,
every open connection is shut so pooled clients see the fake go away as they would Close.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_to_bytes

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
IDLE_TIMEOUT_SEC = 30.0  # an idle kept-alive connection is closed after this
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


class KeepAliveServer(ThreadingHTTPServer):
    """ThreadingHTTPServer for a WSGI app, tracking its connections so stop() can end them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, app: WSGIApp) -> None:
        self.app = app
        self.clock_skew_sec = 0.0  # added to the time in every answer's Date header
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), KeepAliveHandler)
        self.host = host

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # Each answer leaves in one write (buffered wfile); no Nagle wait behind it either.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up first (a timeout in a test): nothing to report
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection (kept-alive ones included)."""
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class KeepAliveHandler(BaseHTTPRequestHandler):
    """Serves each request of a connection through the server's WSGI app."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SEC
    wbufsize = -1  # buffered: status line, headers and body go out in one write on flush
    server: KeepAliveServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: the fake records requests itself

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The `Date` header of every answer, off by the server's clock_skew_sec: a Close
        # whose clock differs from the client's.
        moment = time.time() if timestamp is None else timestamp
        return super().date_time_string(moment + self.server.clock_skew_sec)

    def __getattr__(self, name: str) -> Any:
        # do_GET, do_PUT, ...: every method goes through the app, which answers 405 itself.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.send_error(411, "Content-Length required")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status, headers, payload = self._call_app(body)
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _call_app(self, body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None  # the legacy write() callable; Flask never uses it

        chunks = self.server.app(self._environ(body), start_response)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return started[0], started[1], payload

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.host,
            "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ
