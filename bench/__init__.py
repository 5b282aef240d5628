"""Benchmarks and soak runs: `python3 dev.py bench NAME [options]` (see bench/__main__.py)."""
