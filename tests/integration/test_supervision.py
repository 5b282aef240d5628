"""The two supervisors, in this process, over real child processes: the worker pool
(`dealkeeper worker --processes N`) and `dealkeeper run`'s stack.

The children are small Python programs, so each test says exactly how a child behaves
(exits at once, ignores SIGTERM, ...). A supervisor is stopped as a platform would stop it:
SIGTERM to this process, sent from a timer once the children are up.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.commands import runner
from service.config.settings import Settings
from service.processing import pool
from tests.processes import alive
from tests.waiting import wait_for

# A child that writes its pid to a file named by its argument, then does `then`. A child
# that ignores SIGTERM does so before it writes, so a test that sees the pid knows it will.
CHILD = (
    "import os, signal, sys, time; {first}; "
    "open(sys.argv[1], 'a').write(f'{{os.getpid()}}\\n'); {then}"
)
SLEEPS = "time.sleep(60)"
IGNORES_SIGTERM = "ignores SIGTERM, then sleeps"


def child(path: Path, then: str) -> list[str]:
    first = "pass"
    if then == IGNORES_SIGTERM:
        first, then = "signal.signal(signal.SIGTERM, signal.SIG_IGN)", SLEEPS
    return [sys.executable, "-c", CHILD.format(first=first, then=then), str(path)]


def started(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.fixture
def sigterm_when() -> Iterator[Callable[[Callable[[], bool]], None]]:
    """Sends this process SIGTERM once `ready()` holds (checked from a thread)."""
    threads: list[threading.Thread] = []

    def arm(ready: Callable[[], bool]) -> None:
        def fire() -> None:
            wait_for(ready, what="the children to start")
            os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=fire, daemon=True)
        thread.start()
        threads.append(thread)

    yield arm
    for thread in threads:
        thread.join(timeout=30)


def test_a_burst_pool_returns_the_worst_exit_code(tmp_path: Path) -> None:
    commands = [child(tmp_path / "a", "sys.exit(0)"), child(tmp_path / "b", "sys.exit(3)")]

    assert 3 == pool.Pool(commands, burst=True).run()


@pytest.mark.allow_error_logs  # worker_process_exited, each time
def test_a_dying_process_is_started_again_ever_later(
    tmp_path: Path, sigterm_when: Callable[[Callable[[], bool]], None]
) -> None:
    """A process that dies at once is a crash loop: each restart waits twice as long."""
    dies = tmp_path / "dies"
    sigterm_when(lambda: len(started(dies)) >= 3)
    supervisor = pool.Pool([child(dies, "sys.exit(1)")], burst=False)

    code = supervisor.run()

    (slot,) = supervisor.slots
    assert 0 == code
    assert slot.pause_sec >= 4 * pool.RESTART_PAUSE_SEC  # 1, 2, then 4 s and more


@pytest.mark.allow_error_logs  # worker_process_killed
def test_stopping_passes_sigterm_on_and_kills_a_process_that_ignores_it(
    tmp_path: Path,
    sigterm_when: Callable[[Callable[[], bool]], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool, "STOP_GRACE_SEC", 1.0)  # Heroku's 30 s, shortened
    polite, stubborn = tmp_path / "polite", tmp_path / "stubborn"
    sigterm_when(lambda: bool(started(polite) and started(stubborn)))
    supervisor = pool.Pool([child(polite, SLEEPS), child(stubborn, IGNORES_SIGTERM)], burst=False)

    code = supervisor.run()

    assert 1 == code  # one process had to be killed
    assert not any(alive(pid) for pid in started(polite) + started(stubborn))


def test_the_pool_restores_the_signal_handlers_it_replaced(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)

    pool.Pool([child(tmp_path / "a", "sys.exit(0)")], burst=True).run()

    assert before == signal.getsignal(signal.SIGTERM)


def test_run_makes_a_local_webhook_key_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    first = runner.dev_webhook_secret(tmp_path)

    assert (first, 64) == (runner.dev_webhook_secret(tmp_path), len(first))
    mode = stat.S_IMODE((tmp_path / runner.DEV_SECRET_FILE).stat().st_mode)
    assert 0o600 == mode


def test_run_hands_children_its_redis_and_a_local_key_only_when_none_is_set(
    tmp_path: Path,
) -> None:
    bare = runner.child_environment(Settings(), redis_url="redis://x", data_dir=tmp_path)
    keyed = runner.child_environment(
        Settings(webhook_secrets=(b"\x11" * 32,)), redis_url="redis://x", data_dir=tmp_path
    )

    assert ("redis://x", 64) == (bare["REDIS_URL"], len(bare["CLOSE_WEBHOOK_SECRET"]))
    assert keyed.get("CLOSE_WEBHOOK_SECRET") == os.environ.get("CLOSE_WEBHOOK_SECRET")


def test_run_stops_when_a_child_dies_and_stops_the_others(tmp_path: Path) -> None:
    stack = runner.Stack()
    stack.children = [
        subprocess.Popen(child(tmp_path / "web", SLEEPS)),
        subprocess.Popen(child(tmp_path / "worker", "sys.exit(1)")),
    ]
    try:
        assert 1 == runner._wait(stack)
    finally:
        runner._stop(stack)

    assert [True, True] == [c.poll() is not None for c in stack.children]


def test_run_kills_a_child_that_outlives_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "STOP_GRACE_SEC", 1.0)
    stubborn = tmp_path / "stubborn"
    stack = runner.Stack(children=[subprocess.Popen(child(stubborn, IGNORES_SIGTERM))])
    wait_for(lambda: started(stubborn), what="the child to start")

    runner._stop(stack)

    assert -signal.SIGKILL == stack.children[0].returncode
