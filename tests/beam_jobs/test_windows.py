"""Windowed runs: the job over disjoint sets of speakers, merged into one output a single pass could have written."""

import collections
import csv
import glob
import json
import os

import numpy as np
import pytest

from beam_jobs import job, outputs, read, sample_corpus, windows
from beam_jobs.write import MeanStdFn
from pipeline import common_voice as cv
from pipeline import features
from tests.beam_jobs.test_preprocess import read_split
from tests.helpers import IN_PROCESS_BEAM, TEST_RATE


def test_window_count_and_the_speakers_windows():
    assert windows.window_count(100, 0) == 1 and windows.window_count(100, 100) == 1
    assert windows.window_count(101, 100) == 2 and windows.window_count(1_000_000, 50_000) == 20
    speakers = [f"speaker{i}" for i in range(4000)]
    counts = collections.Counter(read.window_of(s, 7, 4) for s in speakers)
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 900  # even slices of the speakers
    assert [read.window_of(s, 7, 4) for s in speakers[:50]] == [read.window_of(s, 7, 4) for s in speakers[:50]]
    assert [read.window_of(s, 7, 4) for s in speakers[:50]] != [read.window_of(s, 8, 4) for s in speakers[:50]]


def _partial(rng, frames: int, bins: int = 5):
    x = rng.normal(3.0, 2.0, (frames, bins))
    return (frames, x.sum(axis=0), np.square(x).sum(axis=0)), x


def test_merged_statistics_equal_one_pass_over_every_window():
    rng = np.random.default_rng(0)
    (a, xa), (b, xb), (c, xc) = _partial(rng, 300), _partial(rng, 50), _partial(rng, 1)
    fn = MeanStdFn()
    whole = fn.extract_output(fn.merge_accumulators([a, b, c]))
    merged = windows.merge_normalization([fn.extract_output(a), {"frames": 0}, fn.extract_output(b),
                                          fn.extract_output(c)])
    assert merged["frames"] == 351
    np.testing.assert_allclose(merged["mean"], np.concatenate([xa, xb, xc]).mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(merged["std"], whole["std"], rtol=1e-9)
    assert merged["global_std"] == pytest.approx(whole["global_std"], rel=1e-9)
    assert windows.merge_normalization([fn.extract_output(a), {"frames": 3, "non_finite": True}])["non_finite"]


@pytest.fixture(scope="module")
def wide_corpus(tmp_path_factory) -> str:
    """Enough speakers that each of two windows holds both genders in every split."""
    root = tmp_path_factory.mktemp("wide_corpus")
    sample_corpus.make_corpus(str(root), speakers_per_gender=12, clips_per_speaker=2, seed=3,
                              seconds_range=(1.5, 2.5), sample_rate=TEST_RATE)
    return str(root)


@pytest.fixture(scope="module")
def windowed_and_single(wide_corpus, tmp_path_factory):
    runs = {}
    for name, window_clips in (("single", 0), ("windowed", 40)):
        out = str(tmp_path_factory.mktemp(name))
        config = job.PreprocessConfig(cv_dirs=(wide_corpus,), output_dir=out, split_fractions=(0.5, 0.25, 0.25),
                                      max_blocks_per_clip=2, seed=4, target_shard_mb=0.05, balance_clips=False,
                                      window_clips=window_clips)
        runs[name] = (out, job.run(config, IN_PROCESS_BEAM))
    return runs


@pytest.mark.slow
def test_a_windowed_run_reads_every_clip_once_and_merges_one_output(windowed_and_single):
    (_, single), (out, merged) = windowed_and_single["single"], windowed_and_single["windowed"]
    assert merged["windows"] == 3 and "windows" not in single  # 2 x 48 rows + bad rows, 40 per window
    # Speaker cap, split and (with --nobalance_clips) the decoded clips are per speaker: the same as one pass.
    for key in ("labelled", "after_speaker_cap", "after_split", "after_clip_balance", "decoded"):
        assert merged["clip_funnel"][key] == single["clip_funnel"][key], key
    no_balance = {k: v for k, v in merged["rejected"].items() if k != "dropped_by_block_balance"}
    assert no_balance == {k: v for k, v in single["rejected"].items() if k != "dropped_by_block_balance"}
    # One numbering of the shards, read back like any run's, counts as in the metadata.
    fs = features.LOG_MEL
    speakers = {}
    for split in features.SPLITS:
        names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, features.shard_pattern(split))))
        count = merged["shards"][split]
        assert names == [features.shard_name(split, i, count) for i in range(count)]
        records = read_split(out, split, fs)
        for label, gender in enumerate(features.GENDER_NAMES):
            assert sum(r[features.LABEL_KEY] == label for r in records) == merged["splits"][split]["blocks"][gender]
        assert len(records) == merged["blocks_read_back"][split] > 0
        speakers[split] = {r[features.SPEAKER_ID_KEY].decode() for r in records}
        # Each speaker in the split one pass gives it (the block balance is the only per-window choice).
        assert {cv.speaker_split(s, 4, (0.5, 0.25, 0.25)) for s in speakers[split]} == {split}
        if split == features.TRAIN:  # the merged statistics are those of the written train blocks
            frames = np.concatenate([r[features.BLOCK_KEY] for r in records])
            np.testing.assert_allclose(merged["normalization"]["mean"], frames.mean(axis=0), atol=1e-4)
            np.testing.assert_allclose(merged["normalization"]["std"], frames.std(axis=0), atol=1e-3)
    assert not (speakers["train"] & speakers["validation"]) and not (speakers["train"] & speakers["test"])
    # Every rejection once, in one file; nothing of the windows left, the manifest lists what is there.
    [path] = glob.glob(os.path.join(out, "rejected-*.tsv"))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert dict(collections.Counter(r["reason"] for r in rows)) == merged["rejected"]
    assert merged["rejected"]["malformed_row"] == single["rejected"]["malformed_row"] > 0  # window 0 only
    left = sorted(os.listdir(out))
    assert not [n for n in left if n.startswith(windows.WINDOW_PREFIX) or n.startswith("_spill")], left
    assert json.load(open(os.path.join(out, features.METADATA_FILENAME))) == merged
    assert os.path.exists(os.path.join(out, "summary.txt"))
    listed = json.load(open(os.path.join(out, outputs.MANIFEST_FILENAME)))["files"]
    assert sorted(listed + [outputs.MANIFEST_FILENAME]) == left


def test_window_clips_is_checked(tmp_path):
    with pytest.raises(ValueError, match="window_clips"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir=str(tmp_path), window_clips=-1)
