"""Hot reload through the web app: /readyz shows the digest of the rules in force.

An edited rules file is in force within the check interval (2 s), without a restart; a
broken edit is rejected whole and the last good rules (and their digest) stay.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.config import defaults
from service.config.settings import Settings
from service.core.rules import load_rules_path
from service.intake.app import create_app
from tests.edits import write

GOOD = "rules:\n  - name: first\n    then: [{set: {confidence: 1}}]\n"
BETTER = "rules:\n  - name: second\n    then: [{set: {confidence: 2}}]\n"
BROKEN = "rules:\n  - name: broken\n    thne: [{set: {confidence: 3}}]\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "rules.yaml", GOOD, tick=1)
    return tmp_path


@pytest.fixture
def app(redis_url: str, folder: Path) -> Flask:
    return create_app(Settings(redis_url=redis_url, rules_path=str(folder)))


def readiness(app: Flask) -> tuple[int, dict[str, Any]]:
    answer = app.test_client().get("/readyz")
    return answer.status_code, answer.get_json()


def test_hot_reload_readyz_shows_the_edited_rules_digest(app: Flask, folder: Path) -> None:
    """After an edit, /readyz reports the new rules' digest once the check interval has
    passed, and not before (the holder's clock is pinned: no timing on a busy machine)."""
    holder = app.extensions["dealkeeper"].rules
    now = [1000.0]
    holder.clock = lambda: now[0]
    holder.refresh()  # looked at 1000
    before = readiness(app)[1]["rules_digest"]
    write(folder / "rules.yaml", BETTER, tick=2)
    expected = load_rules_path(folder).digest

    now[0] += defaults.RULES_CHECK_INTERVAL_SEC - 0.1
    still = readiness(app)[1]["rules_digest"]
    now[0] += 0.1
    after = readiness(app)[1]["rules_digest"]

    assert (before, expected) == (still, after)
    assert before != expected


@pytest.mark.allow_error_logs
def test_hot_reload_broken_edit_keeps_the_last_good_digest(app: Flask, folder: Path) -> None:
    """A broken edit is rejected; /readyz stays ready with the last good rules' digest."""
    good = readiness(app)[1]
    write(folder / "rules.yaml", BROKEN, tick=2)
    holder = app.extensions["dealkeeper"].rules
    holder.clock = lambda: time.monotonic() + 60  # the check interval has passed; no waiting

    readiness(app)  # the look that finds the broken edit

    assert holder.problems

    assert (200, good["rules_digest"], 1) == (
        readiness(app)[0],
        readiness(app)[1]["rules_digest"],
        readiness(app)[1]["rules"],
    )
