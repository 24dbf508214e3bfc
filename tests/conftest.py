"""Shared fixtures: every fixture is generated here, nothing is read from ../shared."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from apache_beam.runners.portability.fn_api_runner import fn_runner  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402

from beam_jobs import sample_corpus  # noqa: E402

TEST_RATE = 16000


def make_test_pipeline() -> TestPipeline:
    """A TestPipeline on the in-process FnApiRunner (no Prism download attempt)."""
    return TestPipeline(runner=fn_runner.FnApiRunner(), blocking=True)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> str:
    """A tiny two-locale corpus (both schemas) with every kind of bad row."""
    root = tmp_path_factory.mktemp("corpus")
    sample_corpus.make_corpus(
        str(root), speakers_per_gender=4, clips_per_speaker=2, seed=1,
        seconds_range=(1.5, 3.0), sample_rate=TEST_RATE,
    )
    return str(root)
