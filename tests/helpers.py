"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing.test_pipeline import TestPipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]
MULTI_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def make_test_pipeline() -> TestPipeline:
    """A TestPipeline on the in-process FnApiRunner (no Prism download attempt)."""
    return TestPipeline(runner=fn_runner.FnApiRunner(), blocking=True)


def run_module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python -m <args>`` from the repository root, as a user would; returns the finished process."""
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
