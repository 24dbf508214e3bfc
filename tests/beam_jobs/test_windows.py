"""Windowed runs: the job over disjoint sets of speakers, merged into one output a single pass could have written."""

import collections
import csv
import glob
import json
import os

import apache_beam as beam
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


def test_rows_are_reported_by_window_0_and_a_lost_tsv_by_every_window():
    row = cv.Rejection("/c/en/validated.tsv:7", cv.MALFORMED_ROW, "3 fields")
    lost = cv.Rejection("/c/en/validated.tsv", read.UNREADABLE_TSV, "I/O error after 10 rows")
    assert read.reported_in_window(row, 0) and not read.reported_in_window(row, 2)
    assert read.reported_in_window(beam.pvalue.TaggedOutput("rejected", lost), 2)


def _window(root, name: str, lines: list[str], metadata: dict) -> str:
    directory = root / name
    directory.mkdir()
    (directory / "rejected-00000-of-00001.tsv").write_text("clip\treason\tdetail\n" + "".join(lines))
    (directory / features.METADATA_FILENAME).write_text(json.dumps(metadata))
    return str(directory)


def test_merge_lists_a_tsv_lost_in_several_windows_once_and_counts_what_it_wrote(tmp_path):
    lost_line = f"/c/en/train.tsv\t{read.UNREADABLE_TSV}\tI/O error\n"
    lost = [{"item": "/c/en/train.tsv", "reason": read.UNREADABLE_TSV, "detail": "I/O error"}]
    empty = {s: {m: {g: 0 for g in features.GENDER_NAMES} for m in ("clips", "blocks", "speakers", "audio_seconds")}
             for s in features.SPLITS}
    base = {"splits": empty, "shards": {}, "blocks_read_back": {}, "normalization": {"frames": 0}}
    out = tmp_path / "out"
    out.mkdir()
    dirs = [_window(out, "_window-0000-of-0002", ["a\tmalformed_row\tx\n", lost_line],
                    {**base, "rejected": {"malformed_row": 1, read.UNREADABLE_TSV: 1}, "lost_sources": lost}),
            _window(out, "_window-0001-of-0002", [lost_line, "b\tsilent\ty\n"],
                    {**base, "rejected": {"silent": 1, read.UNREADABLE_TSV: 1}, "lost_sources": lost})]
    path = windows.merge(dirs, str(out), {"flags": {"split_fractions": [1, 0, 0]}})
    merged = json.load(open(path))
    assert merged["rejected"] == {"malformed_row": 1, read.UNREADABLE_TSV: 1, "silent": 1}
    assert merged["lost_sources"] == lost and merged["shards"] == {}
    assert open(out / "rejected-00000-of-00001.tsv").read().count("train.tsv") == 1
    assert path.endswith("metadata.incomplete.json") and merged["problems"]  # no block at all: not committed
    assert not [n for n in os.listdir(out) if n.startswith(windows.WINDOW_PREFIX)]


def test_window_clips_is_checked(tmp_path):
    with pytest.raises(ValueError, match="window_clips"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir=str(tmp_path), window_clips=-1)


@pytest.mark.slow
def test_official_split_rejections_are_counted_once_in_a_windowed_run(wide_corpus, tmp_path):
    # The wide corpus with train/dev/test.tsv by speaker, and one line of train.tsv too long to be a row.
    names = dict(zip(features.SPLITS, ("train.tsv", "dev.tsv", "test.tsv"), strict=True))
    for locale in sorted(os.listdir(wide_corpus)):
        source = os.path.join(wide_corpus, locale)
        copy = tmp_path / "cv" / locale
        copy.mkdir(parents=True)
        os.symlink(os.path.join(source, "clips"), copy / "clips")
        lines = open(os.path.join(source, cv.VALIDATED_TSV), encoding="utf-8").read().splitlines()
        (copy / cv.VALIDATED_TSV).write_text("\n".join(lines) + "\n")
        header, rows = lines[0], [line.split("\t") for line in lines[1:]]
        client, path = header.split("\t").index("client_id"), header.split("\t").index("path")
        for split, name in names.items():
            mine = [r for r in rows if len(r) > path and cv.speaker_split(r[client], 4, (0.5, 0.25, 0.25)) == split]
            extra = ["x" * (cv.MAX_LINE_BYTES + 10)] if split == features.TRAIN else []
            (copy / name).write_text("\n".join([header] + ["\t".join(r) for r in mine] + extra) + "\n")
    runs = {}
    for window_clips in (0, 40):
        config = job.PreprocessConfig(cv_dirs=(str(tmp_path / "cv"),), output_dir=str(tmp_path / f"out{window_clips}"),
                                      use_official_splits=True, max_blocks_per_clip=2, seed=4, balance_clips=False,
                                      window_clips=window_clips)
        runs[window_clips] = job.run(config, IN_PROCESS_BEAM)
    single, merged = runs[0], runs[40]
    assert merged["windows"] == 3
    assert merged["rejected"]["malformed_row"] == single["rejected"]["malformed_row"]  # the long train.tsv lines too
    assert merged["clip_funnel"]["after_split"] == single["clip_funnel"]["after_split"]
    assert merged["rejected"].get("not_in_official_split", 0) == single["rejected"].get("not_in_official_split", 0)
