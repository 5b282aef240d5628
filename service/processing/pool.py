"""`dealkeeper worker --processes N`: one dyno or container running N worker processes.

A worker process handles one event at a time, and most of that time it waits for Close:
a GET and a PUT, each a round trip to Close's API (tens to hundreds of milliseconds from a
dyno, against about a millisecond of our own work). Close allows some 20 writes a second,
so one process cannot keep up with a backlog, and a dyno per process wastes the dyno.

The pool starts the processes, starts again any that dies (with a growing pause when one
keeps dying at once), and on SIGTERM or SIGINT passes SIGTERM on and waits for each to
finish the event in hand. Heroku signals every process of a dyno itself; RQ ignores the
second SIGTERM arriving within a second, so the job in hand still finishes.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("dealkeeper.pool")

STOP_GRACE_SEC = 25.0  # under Heroku's 30 s between SIGTERM and SIGKILL
POLL_SEC = 0.2
QUICK_DEATH_SEC = 10.0  # a process that dies sooner than this after its start is failing
RESTART_PAUSE_SEC = 1.0
RESTART_PAUSE_MAX_SEC = 30.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_command(*, burst: bool, name: str | None) -> list[str]:
    """One plain worker process, as the Procfile's `dealkeeper worker` would run it."""
    command = [sys.executable, "-m", "service", "worker", "--processes", "1"]
    if burst:
        command.append("--burst")
    if name:
        command += ["--name", name]
    return command


@dataclass
class Slot:
    """One of the pool's places and the process currently in it."""

    number: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pause_sec: float = RESTART_PAUSE_SEC
    restart_at: float | None = None
    exit_code: int | None = None  # burst: how it ended


class Pool:
    """Keeps `len(commands)` processes running until told to stop (or, in burst, until all end)."""

    def __init__(
        self,
        commands: Sequence[list[str]],
        *,
        burst: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = [Slot(number, list(command)) for number, command in enumerate(commands, 1)]
        self.burst = burst
        self._clock = clock
        self._stop_signal = 0

    def run(self) -> int:
        """Start every process, supervise them, stop them; the exit code for the CLI."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                self._start(slot)
            log.info("worker_pool_started", extra={"processes": len(self.slots)})
            while not self._stop_signal:
                if self._check() and self.burst:
                    return max((slot.exit_code or 0) for slot in self.slots)
                time.sleep(POLL_SEC)
            return self._stop()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _start(self, slot: Slot) -> None:
        slot.process = subprocess.Popen(slot.command, preexec_fn=_end_with_parent)
        slot.started_at = self._clock()
        slot.restart_at = None

    def _check(self) -> bool:
        """Reap and restart; True when (burst) every process has ended."""
        now = self._clock()
        for slot in self.slots:
            if slot.process is not None and (code := slot.process.poll()) is not None:
                self._ended(slot, code, now)
            if slot.restart_at is not None and now >= slot.restart_at:
                self._start(slot)
                log.info("worker_process_restarted", extra={"slot": slot.number})
        return all(slot.process is None and slot.restart_at is None for slot in self.slots)

    def _ended(self, slot: Slot, code: int, now: float) -> None:
        slot.process = None
        if self.burst:
            slot.exit_code = code
            return
        if now - slot.started_at >= QUICK_DEATH_SEC:
            slot.pause_sec = RESTART_PAUSE_SEC  # it had been running: not a crash loop
        pause = slot.pause_sec
        slot.pause_sec = min(pause * 2, RESTART_PAUSE_MAX_SEC)
        slot.restart_at = now + pause
        extra = {"slot": slot.number, "exit_code": code, "restart_in_sec": pause}
        log.error("worker_process_exited", extra=extra)

    def _stop(self) -> int:
        processes = (slot.process for slot in self.slots if slot.process is not None)
        living = [process for process in processes if process.poll() is None]
        extra = {"signal": self._stop_signal, "processes": len(living)}
        log.info("worker_pool_stopping", extra=extra)
        for process in living:
            process.send_signal(signal.SIGTERM)
        deadline = self._clock() + STOP_GRACE_SEC
        codes = [_wait_until(process, deadline, self._clock) for process in living]
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


def _end_with_parent() -> None:
    """In the child, before it runs: on Linux, ask the kernel for SIGTERM when the pool dies,
    however it dies (SIGKILL, OOM), so no worker is left behind without its supervisor."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_until(
    process: subprocess.Popen[bytes], deadline: float, clock: Callable[[], float]
) -> int:
    try:
        return process.wait(timeout=max(deadline - clock(), 0.0))
    except subprocess.TimeoutExpired:
        log.error("worker_process_killed", extra={"pid": process.pid, "after_sec": STOP_GRACE_SEC})
        process.kill()
        return process.wait()


def run_pool(processes: int, *, burst: bool, name: str | None) -> int:
    """`dealkeeper worker --processes N` with N > 1."""
    commands = [
        worker_command(burst=burst, name=f"{name}-{number}" if name else None)
        for number in range(1, processes + 1)
    ]
    return Pool(commands, burst=burst).run()
