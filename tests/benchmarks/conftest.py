"""Fixtures of the benchmark tests: one generated bench corpus, shared by the benchmarks that take --data."""

from __future__ import annotations

import pytest

from benchmarks import common

BENCH_CLIPS = 12


@pytest.fixture(scope="session")
def generated_clips(tmp_path_factory) -> list:
    """What a benchmark measures on where ../shared/data is absent: generated 48 kHz MP3s, half of each gender."""
    tmp = tmp_path_factory.mktemp("bench_generated")
    clips, source = common.load_clips(str(tmp / "absent"), BENCH_CLIPS, str(tmp))
    assert "generated" in source
    return clips


@pytest.fixture(scope="session")
def bench_corpus(generated_clips, tmp_path_factory) -> str:
    """A release root holding exactly ``generated_clips`` (one locale), for a benchmark's --data."""
    root = tmp_path_factory.mktemp("bench_corpus")
    common.write_corpus(str(root), generated_clips)
    return str(root)
