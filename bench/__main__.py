"""`python -m bench NAME [options]`: run one benchmark, or `all` of them; `python -m bench`
lists them. `python3 dev.py bench all` runs every benchmark from a fresh clone (see
docs/performance.md)."""

from __future__ import annotations

import importlib
import platform
import sys
import time
from types import ModuleType

from bench.common import Result
from bench.loadgen import generator_name

BENCHMARKS = {
    "intake": "bench.intake",
    "worker": "bench.processing",
    "drain": "bench.drain",
    "engine": "bench.engine",
    "latency": "bench.latency",
    "memory": "bench.memory",
    "soak": "bench.soak",
    "redis": "bench.footprint",
    "console": "bench.console",
}
ALL = (
    "intake",
    "worker",
    "drain",
    "engine",
    "latency",
    "memory",
    "redis",
    "console",
)  # soak is a separate run


def run_all() -> int:
    """Every benchmark with its defaults, then one summary table (Markdown, for the docs)."""
    started = time.monotonic()
    results: list[Result] = []
    for name in ALL:
        module: ModuleType = importlib.import_module(BENCHMARKS[name])
        result: Result = module.run(**vars(module.parse([])))
        result.show()
        results.append(result)
    print_summary(results, seconds=time.monotonic() - started)
    return 0


def print_summary(results: list[Result], *, seconds: float) -> None:
    print(f"\n== summary ({seconds / 60:.1f} min; {machine()}; load generator: {generator_name()})")
    print("| benchmark | ratio against the same-run baseline | goals |")
    print("|---|---|---|")
    for result in results:
        goals = ", ".join(
            f"{goal} {'met' if ok else 'MISSED'}" for goal, ok in result.goals.items()
        )
        print(f"| {result.name} | {result.ratio} | {goals} |")


def machine() -> str:
    import os

    return f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    if argv and argv[0] == "all":
        return run_all()
    if not argv or argv[0] not in BENCHMARKS:
        names = ", ".join([*BENCHMARKS, "all"])
        print(f"usage: python -m bench NAME [options]; NAME is one of: {names}")
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
