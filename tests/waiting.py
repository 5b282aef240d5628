"""Waiting on a condition with a deadline: the suite's only way to wait (no hopeful sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

DEADLINE_SEC = 20.0


def wait_for(condition: Callable[[], Any], *, what: str, timeout: float = DEADLINE_SEC) -> Any:
    """Poll until `condition()` is truthy and return it; fail naming `what` after the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
