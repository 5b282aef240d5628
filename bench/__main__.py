"""`python -m bench NAME [options]`: run one benchmark; `python -m bench` lists them."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "soak": "bench.soak",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m bench NAME [options]; NAME is one of: " + ", ".join(BENCHMARKS))
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
