"""Processes the tests start, seen from outside."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while a process with this pid exists (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
