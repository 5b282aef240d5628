"""The Procfile's web process, started as Heroku starts it, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.adapters.embedded import free_port
from tests.conftest import REPO, RULES_DIR
from tests.waiting import wait_for

API_KEY = "sk-gunicorn-log-test-9d3e"
KEY_HEX = "6a" * 32


def procfile_command(name: str) -> str:
    """The command of one Procfile process type."""
    for line in (REPO / "Procfile").read_text().splitlines():
        kind, _, command = line.partition(":")
        if kind == name:
            return command.strip()
    raise AssertionError(f"no {name}: line in the Procfile")


class Web:
    """The Procfile's web process and its log file."""

    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", procfile_command("web")],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def lines(self) -> list[dict[str, Any]]:
        """Every line logged so far, each parsed as JSON (a line that is not fails the test)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def start_web(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Web]]:
    started: list[Web] = []

    def start(**env: str) -> Web:
        base = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PORT": str(free_port()),
            "REDIS_URL": redis_url,
            "CLOSE_API_KEY": API_KEY,
            "CLOSE_WEBHOOK_SECRET": KEY_HEX,
            "DEALKEEPER_RULES": str(RULES_DIR),
        }
        web = Web(tmp_path / f"web-{len(started)}.log", {**base, **env})
        started.append(web)
        wait_for(lambda: answers(web.url), what="gunicorn to answer /healthz")
        return web

    yield start
    for web in started:
        web.stop()


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
