"""Helpers the test modules share (fixtures live in conftest.py; import these, never conftest)."""

from __future__ import annotations

import os
import subprocess
import sys

from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing.test_pipeline import TestPipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]
MULTI_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
TEST_RATE = 16000  # the generated test corpus's MP3 rate (Common Voice's is 48 kHz): smaller fixtures


def make_test_pipeline() -> TestPipeline:
    """A TestPipeline on the in-process FnApiRunner (no Prism download attempt)."""
    return TestPipeline(runner=fn_runner.FnApiRunner(), blocking=True)


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    """os.environ with ``env`` merged over it and the repository on PYTHONPATH (a child imports this checkout)."""
    return {**os.environ, **(env or {}), "PYTHONPATH": REPO}


def run_module(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python -m <args>`` from the repository root, as a user would.

    Args:
      *args: the module and its arguments.
      env: variables set for the child, over this process's environment.
      timeout: seconds before the child is killed (``subprocess.TimeoutExpired``).

    Returns:
      The finished process, stdout and stderr captured as text.
    """
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=_child_env(env), capture_output=True,
                          text=True, timeout=timeout)


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs ``python -c code`` from the repository root.

    Args:
      code: the program.
      env: variables set for the child, over this process's environment.
      timeout: seconds before the child is killed (``subprocess.TimeoutExpired``).

    Returns:
      The finished process, stdout and stderr captured as text.
    """
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_child_env(env), capture_output=True,
                          text=True, timeout=timeout)
