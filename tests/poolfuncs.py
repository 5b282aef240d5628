"""Job functions for the worker-pool tests, importable by the worker processes they start."""

from __future__ import annotations

import os
import time

from rq import get_current_job

DEADLINE_SEC = 20.0


def meet(key: str, peers: int) -> int:
    """Count in, then wait until `peers` jobs are running at once; returns this process's pid.

    Only as many processes as there are peers, working side by side, can all return."""
    connection = get_current_job().connection  # type: ignore[union-attr]
    connection.incr(key)
    deadline = time.monotonic() + DEADLINE_SEC
    while int(connection.get(key) or 0) < peers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {connection.get(key)!r} of {peers} jobs ran at once")
        time.sleep(0.01)
    return os.getpid()


def hold(started_key: str, release_key: str) -> str:
    """Say it started, then wait until told to finish (a job in hand at shutdown)."""
    connection = get_current_job().connection  # type: ignore[union-attr]
    connection.set(started_key, os.getpid())
    deadline = time.monotonic() + DEADLINE_SEC
    while not connection.exists(release_key):
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.01)
    return "finished"
