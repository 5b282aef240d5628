"""The load generator for HTTP benchmarks: wrk with a signing Lua script when it is on PATH,
else a Python generator (several processes, a thread per connection). Both send a new,
correctly signed ~1 KB Close webhook in every request, for a fixed time, on loopback only.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import KEY_HEX, percentile
from service.intake.signatures import signed_headers

LUA_SCRIPT = Path(__file__).resolve().parent / "signed.lua"
CONNECTIONS = 16
PY_PROCESSES = 2
_WRK_LINE = re.compile(r"WRK_RESULT (.*)")


@dataclass(frozen=True)
class Load:
    """What one run of the load generator saw."""

    tool: str
    requests: int
    errors: int  # non-2xx answers and socket errors
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_sec(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def generator_name() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def run_load(url: str, *, seconds: float, connections: int = CONNECTIONS) -> Load:
    """POST signed webhooks to `url` (loopback) for `seconds` from `connections` clients."""
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"load is only ever sent to loopback, not {url}")
    if generator_name() == "wrk":
        return _run_wrk(url, seconds=seconds, connections=connections)
    return _run_python(url, seconds=seconds, connections=connections)


def _run_wrk(url: str, *, seconds: float, connections: int) -> Load:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "5s", "-s", str(LUA_SCRIPT), url]  # fmt: skip
    env = {**os.environ, "BENCH_KEY_HEX": KEY_HEX}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    found = _WRK_LINE.search(done.stdout)
    if not found:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    values = dict(part.split("=") for part in found.group(1).split())
    return Load(
        tool="wrk",
        requests=int(values["requests"]),
        errors=int(values["status_errors"]) + int(values["socket_errors"]),
        seconds=int(values["duration_us"]) / 1e6,
        p50_ms=int(values["p50_us"]) / 1000,
        p99_ms=int(values["p99_us"]) / 1000,
    )


def _run_python(url: str, *, seconds: float, connections: int) -> Load:
    per_process = max(1, connections // PY_PROCESSES)
    jobs = [(url, seconds, per_process, n) for n in range(PY_PROCESSES)]
    with multiprocessing.get_context("spawn").Pool(PY_PROCESSES) as pool:
        parts = pool.starmap(_python_process, jobs)
    latencies = [ms for part in parts for ms in part[0]]
    errors = sum(part[1] for part in parts)
    return Load(
        tool="python",
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


def _python_process(url: str, seconds: float, threads: int, number: int) -> tuple[list[float], int]:
    deadline = time.monotonic() + seconds
    results: list[tuple[list[float], int]] = [([], 0) for _ in range(threads)]
    workers = [
        threading.Thread(target=_python_client, args=(url, deadline, f"p{number}t{i}", results, i))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 30)
    return [ms for r in results for ms in r[0]], sum(r[1] for r in results)


def _python_client(
    url: str, deadline: float, name: str, results: list[tuple[list[float], int]], slot: int
) -> None:
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = 0
    count = 0
    while time.monotonic() < deadline and count < 1_000_000:
        count += 1
        body = webhook_body(f"{name}_{count}")
        started = time.perf_counter()
        status = _post(parts.hostname or "127.0.0.1", parts.port or 80, parts.path, body)
        latencies.append((time.perf_counter() - started) * 1000)
        errors += int(status is None or not 200 <= status < 300)
    results[slot] = (latencies, errors)


def _post(host: str, port: int, path: str, body: bytes) -> int | None:
    headers = {"Content-Type": "application/json"}
    headers.update(signed_headers(body, key=bytes.fromhex(KEY_HEX), timestamp=int(time.time())))
    connection = HTTPConnection(host, port, timeout=5)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def webhook_body(name: str) -> bytes:
    """A ~1 KB Close webhook body for a new event `name` (the same shape signed.lua sends)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime())
    event = {
        "id": f"ev_{name}",
        "object_type": "opportunity",
        "action": "updated",
        "object_id": f"oppo_{name}",
        "date_created": stamp,
        "date_updated": stamp,
        "lead_id": "lead_bench",
        "user_id": "user_human",
        "api_key_id": None,
        "changed_fields": ["confidence"],
        "previous_data": {"confidence": 50},
        "data": {
            "id": f"oppo_{name}",
            "confidence": 60,
            "status_type": "active",
            "value": 1000,
            "note": "x" * 600,
        },
    }
    return json.dumps({"subscription_id": "whsub_bench", "event": event}).encode()
