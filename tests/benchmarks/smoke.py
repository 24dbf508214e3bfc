"""Running a benchmark as a user would, for the smoke tests: ``python -m benchmarks.<name>``, its JSON last line."""

from __future__ import annotations

import json
import math
from typing import Any

from tests.helpers import run_module


def run_benchmark(name: str, *args: str, timeout: float = 300) -> Any:
    """Runs ``python -m benchmarks.<name> *args``; returns its last stdout line, parsed as JSON.

    Raises:
      AssertionError: the benchmark failed (its stderr's end is in the message).
    """
    proc = run_module(f"benchmarks.{name}", *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def is_finite_number(value: Any) -> bool:
    """A real int or float (not a bool, not None), neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def assert_finite(result: dict, keys: list[str]) -> None:
    """Every one of ``keys`` is in ``result`` and holds a finite number."""
    missing = [k for k in keys if k not in result]
    assert not missing, f"missing {missing} in {sorted(result)}"
    bad = {k: result[k] for k in keys if not is_finite_number(result[k])}
    assert not bad, bad
