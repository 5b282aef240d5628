"""A whole dealkeeper cluster on this machine: real gunicorn, several real worker processes,
a Redis server of its own (so it can be stopped and restarted), and the fake Close
delivering signed webhooks. Used by the fault-injection tests and the soak benchmark.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from rq import Worker

from fakeclose import FakeClose
from service.adapters.embedded import RedisServer, free_port
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
# A signature key whose bytes, however shown, look like nothing else in a log (a run of
# one byte such as 5e would read as the ^^^^ under a traceback's line).
KEY_HEX = "59c1a0ca78f6792b7492b34fd4058ca82b9167cf5622923012cd37f3c2724807"
# The production timings (a killed worker's job is taken back in seconds whatever the job
# timeout), but a short read timeout, so a request Close holds fails fast, and no catch-up.
FAST_RECOVERY = {
    "DEALKEEPER_CATCHUP_INTERVAL": "0",
    "CLOSE_READ_TIMEOUT": "1",
}


@dataclass
class Cluster:
    """The processes of one test and the fake Close they talk to."""

    fake: FakeClose
    redis_server: RedisServer
    folder: Path
    env: dict[str, str]
    web_port: int = field(default_factory=free_port)
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    delivered_from: int | None = None  # events before this index are never delivered

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url)

    def start_web(self) -> None:
        self.web = _spawn(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.web_port}",
             "--workers", "2", "service.web:create_app()"],
            self.env, self.folder / "web.log",
        )  # fmt: skip
        wait_for(self.web_ready, what="gunicorn to be ready")

    def web_ready(self) -> bool:
        try:
            return requests.get(f"{self.web_url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def start_worker(self) -> subprocess.Popen[bytes]:
        number = len(self.workers)
        process = _spawn(
            [sys.executable, "-m", "service", "worker", "--name", f"w{number}-{os.getpid()}"],
            self.env,
            self.folder / f"worker{number}.log",
        )
        self.workers.append(process)
        return process

    def start(self, *, workers: int) -> Cluster:
        self.start_web()
        for _ in range(workers):
            self.start_worker()
        wait_for(lambda: Worker.count(connection=self.redis) >= workers, what="workers to register")
        self.deliver()
        return self

    def deliver(self) -> None:
        """From now on, Close delivers every event to the web process (retrying for 20 s)."""
        self.delivered_from = len(self.fake.events)
        self.fake.deliver_webhooks_to(
            f"{self.web_url}/webhooks/close",
            signature_key_hex=KEY_HEX,
            max_attempts=200,
            retry_delay_sec=0.1,
        )

    def our_writes(self) -> list[dict[str, Any]]:
        """Events Close recorded for changes made with dealkeeper's key: applied writes."""
        return [e for e in self.fake.events if e["api_key_id"] == FakeClose.DEFAULT_API_KEY_ID]

    def settle(self, *, timeout: float = 60.0) -> None:
        """Wait until every event is delivered and every job has ended, seen twice."""
        previous: list[object] = [None]

        def quiet() -> bool:
            now = self._snapshot()
            stable = now is not None and now == previous[0]
            previous[0] = now
            return stable

        wait_for(quiet, what="deliveries and jobs to settle", timeout=timeout)

    def _snapshot(self) -> tuple[Any, ...] | None:
        try:
            client = self.redis
            keys = client.keys("rq:job:*")
            states = tuple(sorted(client.hget(k, "status") or b"" for k in keys))
        except redis.RedisError:
            return None
        events, deliveries = len(self.fake.events), list(self.fake.deliveries)
        expected = 0 if self.delivered_from is None else events - self.delivered_from
        done = all(s in (b"finished", b"failed") for s in states)
        if len(deliveries) != expected or not done or not all(d.delivered for d in deliveries):
            return None
        return events, len(deliveries), states

    def stop(self) -> list[int]:
        processes = [p for p in (self.web, *self.workers) if p is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in processes:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log"))
        )


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def persistent_redis(folder: Path) -> RedisServer:
    """A Redis server of the cluster's own that writes every change to disk before it
    answers (appendfsync always): an event acknowledged with 202 survives a restart."""
    server = RedisServer(data_dir=folder / "redis", port=free_port(), persistent=True).start()
    redis.Redis.from_url(server.url).config_set("appendfsync", "always")
    return server


def make_cluster(folder: Path, fake: FakeClose, **env: str) -> Cluster:
    """A cluster (not started yet) on a new persistent Redis, with the shipped rules;
    `env` adds or overrides variables."""
    server = persistent_redis(folder)
    variables = {
        **os.environ,
        "REDIS_URL": server.url,
        "CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY,
        "CLOSE_API_URL": fake.url,
        "CLOSE_WEBHOOK_SECRET": KEY_HEX,
        "DEALKEEPER_RULES": str(REPO / "rules"),
        "LOG_LEVEL": "INFO",
        **FAST_RECOVERY,
        **env,
    }
    return Cluster(fake, server, folder, variables)
