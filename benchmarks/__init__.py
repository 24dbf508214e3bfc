"""Benchmarks, each run as ``python -m benchmarks.<name>`` from the repository root (see common.py)."""
