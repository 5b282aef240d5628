"""`dealkeeper run`, as a newcomer types it: embedded Redis, web, worker, dry-run, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from service.adapters.embedded import free_port, running_embedded_url
from tests.conftest import REPO, RULES_DIR
from tests.waiting import wait_for

CONFIGURATION = ("REDIS_URL", "CLOSE_API_KEY", "CLOSE_WEBHOOK_SECRET", "DEALKEEPER_DRY_RUN")


def test_run_command_serves_a_dry_run_stack_and_stops_cleanly(tmp_path: Path) -> None:
    """With nothing configured, `dealkeeper run` queues a signed test event, logs the plan
    it would apply without calling Close, and stops everything on Ctrl-C."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIGURATION}
    env.update(PORT=str(port), DEALKEEPER_RULES=str(RULES_DIR), PYTHONPATH=str(REPO))
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "service", "run"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _ready(port), what="the web process to be ready")
        sent = subprocess.run(
            [sys.executable, "-m", "service", "send-test-event"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        wait_for(lambda: '"outcome": "dry_run"' in log.read_text(), what="the dry-run plan")
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(timeout=40)
        print(log.read_text()[-3000:])

    assert (0, "202") == (sent.returncode, sent.stdout[:3])
    assert 0 == code
    assert "dry-run: CLOSE_API_KEY is not set" in log.read_text()
    assert '"fired": ["stamp-date-won", "tag-big-deals", "full-confidence-when-won"]' in (
        log.read_text()
    )
    assert None is running_embedded_url(tmp_path / ".dealkeeper" / "redis")


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
