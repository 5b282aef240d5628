"""What every benchmark shares: processes on loopback, a Redis of its own, figures and ratios.

Every benchmark measures dealkeeper and a baseline in the same run on the same machine and
prints one `ratio` line, so a figure is always read against what the stack itself manages
here, never against a number from another machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import redis

from fakeclose import FakeClose
from service.adapters.embedded import RedisServer, free_port

REPO = Path(__file__).resolve().parent.parent
KEY_HEX = "59c1a0ca78f6792b7492b34fd4058ca82b9167cf5622923012cd37f3c2724807"
API_KEY = "test-key"
UNLIMITED = 1_000_000  # requests per second: no rate limit on either side
# The Procfile's web settings: gunicorn from the repository root (so gunicorn.conf.py
# applies) with 2 gevent workers, as Heroku's buildpack and the image set WEB_CONCURRENCY.
WEB_CONCURRENCY = "2"
START_TIMEOUT_SEC = 30.0
STOP_TIMEOUT_SEC = 30.0

T = TypeVar("T")


class HasRatio(Protocol):
    @property
    def ratio(self) -> float: ...


RoundT = TypeVar("RoundT", bound=HasRatio)


@dataclass
class Result:
    """One benchmark's outcome: its figures, the ratio line and whether its goals hold."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    ratio: str = ""
    goals: dict[str, bool] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return all(self.goals.values())

    def show(self) -> None:
        """Print the figures, the goals and the final ratio line."""
        print(f"== {self.name}")
        for key, value in self.figures.items():
            print(f"  {key:<34} {value}")
        for goal, ok in self.goals.items():
            print(f"  goal {goal:<29} {'met' if ok else 'MISSED'}")
        print(f"ratio {self.name}: {self.ratio}")
        print("json " + json.dumps({"bench": self.name, **self.figures, "goals": self.goals}))
        sys.stdout.flush()


def take_turns(runs: Mapping[str, Callable[[], T]], rounds: int) -> list[dict[str, T]]:
    """Each run once a round, `rounds` times, the order reversed every other round: on
    cores other work shares, a run always made first (or last) would be measured apart."""
    taken = []
    for number in range(rounds):
        names = list(runs) if number % 2 == 0 else list(runs)[::-1]
        taken.append({name: runs[name]() for name in names})
    return taken


def median_round(rounds: Sequence[RoundT]) -> RoundT:
    """The round whose ratio is the median of all rounds'."""
    return sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def wait_until(condition: Callable[[], Any], *, what: str, timeout: float) -> Any:
    """Poll `condition` until truthy (bounded in time); RuntimeError naming `what` after."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def start_redis(folder: Path) -> RedisServer:
    """A Redis of the benchmark's own on a loopback TCP port, as production talks to one."""
    return RedisServer(data_dir=folder / "redis", port=free_port(), persistent=False).start()


def service_env(redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of dealkeeper's processes: quiet logs, no catch-up, `extra` on top."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "CLOSE_WEBHOOK_SECRET": KEY_HEX,
        "LOG_LEVEL": "INFO",  # the default: production pays for its log lines
        "DEALKEEPER_CATCHUP_INTERVAL": "0",
        "WEB_CONCURRENCY": WEB_CONCURRENCY,
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def spawn(command: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child process in the repository root with its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command), env=dict(env), cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )


def start_gunicorn(
    app: str, env: Mapping[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn as the Procfile runs it (bound to loopback), ready to serve; returns it and
    its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", app]
    process = spawn(command, env, log)
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: _answers(url, process, log), what=f"gunicorn {app}", timeout=START_TIMEOUT_SEC
    )
    return process, url


def _answers(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    import requests  # local: only the driver needs it here

    if process.poll() is not None:
        raise RuntimeError(f"gunicorn exited with {process.returncode}: {log.read_text()[-2000:]}")
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def start_worker(
    env: Mapping[str, str], log: Path, *, burst: bool = False, processes: int = 1
) -> subprocess.Popen[bytes]:
    """`dealkeeper worker` (the Procfile's worker line) as a child process."""
    command = [sys.executable, "-m", "service", "worker", "--processes", str(processes)]
    return spawn([*command, *(["--burst"] if burst else [])], env, log)


def stop(*processes: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM each process, then wait for it (SIGKILL after STOP_TIMEOUT_SEC)."""
    alive = [p for p in processes if p is not None and p.poll() is None]
    for process in alive:
        process.send_signal(signal.SIGTERM)
    for process in alive:
        try:
            process.wait(timeout=STOP_TIMEOUT_SEC)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def children(pid: int) -> list[int]:
    """The pids of a process's children (gunicorn's workers), from /proc."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def job_span_sec(connection: redis.Redis) -> tuple[int, float]:
    """How many RQ jobs finished and the seconds from the first start to the last end, read
    from the job hashes (process start-up is not counted)."""
    starts, ends = [], []
    for key in connection.scan_iter("rq:job:*", count=1000):
        started, ended = connection.hmget(key, "started_at", "ended_at")
        if started and ended:
            starts.append(_rq_time(started))
            ends.append(_rq_time(ended))
    if not starts:
        return 0, 0.0
    return len(ends), max(ends) - min(starts)


def event_span_sec(log: Path) -> tuple[int, float]:
    """How many events a worker finished and the seconds from the first one's start to the
    last one's end, read from its log's one line per event (its time and duration): RQ
    keeps nothing of a finished event's job to read them from."""
    starts, ends = [], []
    for line in log.read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if "duration_ms" in entry and entry.get("logger") == "dealkeeper.jobs":
            end = _rq_time(entry["ts"])
            starts.append(end - entry["duration_ms"] / 1000)
            ends.append(end)
    if not starts:
        return 0, 0.0
    return len(ends), max(ends) - min(starts)


def _rq_time(raw: bytes | str) -> float:
    text = (raw.decode() if isinstance(raw, bytes) else raw).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def write_rules(folder: Path, text: str) -> Path:
    """A rules folder holding one file with `text`."""
    path = folder / "rules"
    path.mkdir(parents=True, exist_ok=True)
    (path / "bench.yaml").write_text(text)
    return path


def one_field_env(redis_url: str, folder: Path, **extra: str) -> dict[str, str]:
    """The environment of a dealkeeper that writes to Close with ONE_FIELD_RULES."""
    rules = str(write_rules(folder, ONE_FIELD_RULES))
    return service_env(redis_url, CLOSE_API_KEY=API_KEY, DEALKEEPER_RULES=rules, **extra)


def lift_rate_limits(fake: FakeClose) -> None:
    """The fake Close answers every request at once: the benchmark measures dealkeeper."""
    for group in ("read", "write"):
        fake.set_rate_limit(UNLIMITED, group=group)


# One rule, one field: a deal moved to won gets full confidence. Every benchmark event is
# such a move, so each needs exactly one one-field update.
ONE_FIELD_RULES = """\
timezone: America/New_York
rules:
  - name: full-confidence-when-won
    trigger: opportunity.updated
    if:
      - status_type: {changed_to: won}
    then:
      - set: {confidence: 100}
"""


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}"
