"""Benchmarks: run as root from the repository root, e.g. `python -m bench.list_vs_tools` (see bench/README.md)."""
