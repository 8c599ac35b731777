"""Benchmarks: ``python -m bench --quick|--full`` (see README, Performance)."""
