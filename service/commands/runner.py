"""`dealkeeper run`: everything a newcomer needs, in one command.

With no REDIS_URL it starts an embedded, real Redis (kept in .dealkeeper/ so queued events
survive a restart); then gunicorn with the web app and one worker, as the Procfile would.
Ctrl-C (or SIGTERM) stops the children first, then Redis, so nothing queued is lost.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import click

from service.adapters.embedded import RedisServer
from service.config import defaults
from service.config.settings import Settings

log = logging.getLogger("dealkeeper.run")
STOP_GRACE_SEC = 25.0
DEV_SECRET_FILE = "dev-webhook-secret"


@dataclass
class Stack:
    """The processes `dealkeeper run` owns."""

    redis: RedisServer | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)


def dev_webhook_secret(data_dir: Path) -> str:
    """A local signature key, made once and kept beside the embedded Redis."""
    path = data_dir / DEV_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def child_environment(settings: Settings, *, redis_url: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ, REDIS_URL=redis_url, PORT=str(settings.port))
    if not settings.webhook_secrets:
        env["CLOSE_WEBHOOK_SECRET"] = dev_webhook_secret(data_dir)
    return env


def web_command(*, host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # As gunicorn.conf.py, which a run outside the repository does not find: slow
        # clients must not hold the intake there either.
        "--worker-class",
        "gevent",
        "--graceful-timeout",
        "20",
        "--access-logfile",
        "-",
        "service.web:create_app()",
    ]


def worker_command() -> list[str]:
    return [sys.executable, "-m", "service", "worker"]


def run(settings: Settings, *, host: str, web_workers: int) -> int:
    """Start the stack, wait until told to stop or a child dies, stop it. Returns an exit code."""
    data_dir = Path(defaults.LOCAL_DATA_DIR)
    stack = Stack()
    try:
        redis_url = settings.redis_url or _start_redis(stack, data_dir)
        env = child_environment(settings, redis_url=redis_url, data_dir=data_dir)
        web = web_command(host=host, port=settings.port, workers=web_workers)
        for command in (web, worker_command()):
            # A session of their own: Ctrl-C reaches only us, and we stop them gracefully.
            stack.children.append(subprocess.Popen(command, env=env, start_new_session=True))
        _announce(settings, host=host, data_dir=data_dir)
        return _wait(stack)
    finally:
        _stop(stack)


def _start_redis(stack: Stack, data_dir: Path) -> str:
    stack.redis = RedisServer(data_dir=data_dir / "redis", persistent=True).start()
    click.echo(f"embedded Redis: {stack.redis.url} (data kept in {data_dir / 'redis'})")
    return stack.redis.url


def _announce(settings: Settings, *, host: str, data_dir: Path) -> None:
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
    click.echo(f"webhook URL: http://{shown}:{settings.port}/webhooks/close")
    click.echo("  give Close the public HTTPS address that forwards to it (dealkeeper subscribe)")
    if settings.dry_run:
        click.echo("dry-run: CLOSE_API_KEY is not set, so planned updates are logged, not sent")
    if not settings.webhook_secrets:
        click.echo(f"webhook secret: a local one, kept in {data_dir / DEV_SECRET_FILE}")
        click.echo("  try it: dealkeeper send-test-event")
    click.echo("stop with Ctrl-C")


def _wait(stack: Stack) -> int:
    stopping = {"signal": 0}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping["signal"]:
            for name, child in zip(("web", "worker"), stack.children, strict=True):
                if child.poll() is not None:
                    click.echo(f"{name} exited with {child.returncode}; stopping", err=True)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(stack: Stack) -> None:
    for child in stack.children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SEC
    for child in stack.children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if stack.redis is not None:
        stack.redis.stop()
