"""End-to-end runs of the job on generated corpora, the CLI, the Dataflow dry run."""

import collections
import csv
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from beam_jobs import job, outputs, read, runner, spill
from pipeline import console, examples, features
from tests.helpers import IN_PROCESS_BEAM, run_module, without_tensorflow

IN_PROCESS = IN_PROCESS_BEAM


def read_split(output_dir: str, split: str, fs: features.FeatureSet) -> list[dict]:
    files = sorted(glob.glob(os.path.join(output_dir, features.shard_pattern(split))))
    ds = tf.data.TFRecordDataset(files, compression_type=features.SHARD_COMPRESSION)
    out = []
    for batch in ds.batch(64).map(lambda s: examples.parse_blocks(s, fs)):
        for i in range(len(batch[features.LABEL_KEY])):
            out.append({k: v[i].numpy() for k, v in batch.items()})
    return out


@pytest.fixture(scope="module")
def job_output(corpus_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out"))
    config = job.PreprocessConfig(
        cv_dirs=(corpus_dir,), output_dir=out, split_fractions=(0.5, 0.25, 0.25), max_blocks_per_clip=3, seed=5,
        target_shard_mb=0.2,
    )
    metadata = job.run(config, IN_PROCESS)
    return config, out, metadata


def test_end_to_end_records_parse_and_match_metadata(job_output):
    config, out, metadata = job_output
    fs = config.feature_set
    assert metadata["format_version"] == features.FORMAT_VERSION
    assert features.FeatureSet.from_dict(metadata["feature_set"]) == fs
    on_disk = json.load(open(os.path.join(out, features.METADATA_FILENAME)))
    assert on_disk == metadata
    speakers_by_split = {}
    total = 0
    for split in features.SPLITS:
        records = read_split(out, split, fs)
        total += len(records)
        counts = metadata["splits"][split]
        for label, gender in enumerate(features.GENDER_NAMES):
            mine = [r for r in records if r[features.LABEL_KEY] == label]
            assert len(mine) == counts["blocks"][gender]
            assert len({r[features.CLIP_ID_KEY] for r in mine}) == counts["clips"][gender]
            assert len({r[features.SPEAKER_ID_KEY] for r in mine}) == counts["speakers"][gender]
        for r in records:
            assert r[features.BLOCK_KEY].shape == fs.block_shape
            assert r[features.BLOCK_INDEX_KEY] >= 0
        speakers_by_split[split] = {r[features.SPEAKER_ID_KEY] for r in records}
        assert metadata["shards"].get(split, 0) == len(glob.glob(os.path.join(out, features.shard_pattern(split))))
    assert total > 0
    assert metadata["shards"]["train"] > 1  # target_shard_mb=0.2 forces several shards
    # No voice in two splits.
    s = speakers_by_split
    assert not (s["train"] & s["validation"]) and not (s["train"] & s["test"]) and not (s["validation"] & s["test"])


def test_end_to_end_balances_train_blocks(job_output):
    _, _, metadata = job_output
    blocks = metadata["splits"]["train"]["blocks"]
    assert blocks["male"] > 0 and blocks["female"] > 0
    assert abs(blocks["male"] - blocks["female"]) <= 0.35 * max(blocks.values())


def test_end_to_end_rejections_are_listed_and_counted(job_output):
    _, out, metadata = job_output
    [path] = glob.glob(os.path.join(out, "rejected-*.tsv"))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    by_reason = collections.Counter(r["reason"] for r in rows)
    assert dict(by_reason) == metadata["rejected"]
    # Row-level rejections never depend on sampling: both locales' bad rows are there.
    assert by_reason["gender_blank"] == 2 and by_reason["malformed_row"] == 2
    assert by_reason["gender_other"] == 1 and by_reason["gender_do_not_wish_to_say"] == 1
    audio_reasons = {"missing_file", "empty_file", "undecodable", "too_short", "silent"}
    assert audio_reasons & set(by_reason), by_reason
    assert all(r["clip"] and r["detail"] for r in rows)


def test_end_to_end_normalization_stats(job_output):
    config, _, metadata = job_output
    stats = metadata["normalization"]
    assert len(stats["mean"]) == len(stats["std"]) == config.feature_set.num_bins
    train_blocks = sum(metadata["splits"]["train"]["blocks"].values())
    assert stats["frames"] == train_blocks * config.feature_set.block_frames
    assert all(s > 0 for s in stats["std"])


def test_non_empty_output_is_refused_and_overwrite_replaces(job_output, corpus_dir):
    config, out, _ = job_output
    with pytest.raises(runner.JobError, match="not empty.*--overwrite"):
        outputs.prepare_output(config)
    written = json.load(open(os.path.join(out, outputs.MANIFEST_FILENAME)))["files"]
    assert features.METADATA_FILENAME in written and any(n.startswith(features.REJECTED_PREFIX) for n in written)
    assert sorted(written + [outputs.MANIFEST_FILENAME]) == sorted(os.listdir(out))
    # A user's files survive --overwrite, even one named like a shard: only the manifest's files go.
    for name in ("notes.txt", features.shard_name("train", 0, 99)):
        open(os.path.join(out, name), "w").close()
    import dataclasses

    outputs.prepare_output(dataclasses.replace(config, overwrite=True))
    assert sorted(os.listdir(out)) == sorted(["notes.txt", features.shard_name("train", 0, 99)])
    # Without a manifest, nothing there is known to be the job's: refused, nothing deleted.
    with pytest.raises(runner.JobError, match="no voicegender-manifest.json.*nothing was deleted"):
        outputs.prepare_output(dataclasses.replace(config, overwrite=True))
    assert len(os.listdir(out)) == 2


def test_unreadable_inputs_fail_before_any_work(tmp_path):
    config = job.PreprocessConfig(cv_dirs=(str(tmp_path / "nowhere"),), output_dir=str(tmp_path / "o"))
    with pytest.raises(runner.JobError, match="nowhere.*no validated.tsv"):
        job.run(config, IN_PROCESS)
    assert not os.path.exists(tmp_path / "o")


def test_official_splits_need_their_tsvs(corpus_dir, tmp_path):
    config = job.PreprocessConfig(cv_dirs=(corpus_dir,), output_dir=str(tmp_path), use_official_splits=True)
    with pytest.raises(runner.JobError, match="train.tsv"):
        read.check_inputs(config)


def test_config_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir="y", split_fractions=(0.5, 0.1, 0.1))


def run_cli(*args, timeout=300, env=None):
    return run_module(*args, timeout=timeout, env=env)


@pytest.mark.slow
def test_cli_multiprocessing_run_prints_progress_and_summary_on_a_clean_console(corpus_dir, tmp_path):
    out = tmp_path / "cli"
    # TensorFlow refused in the launcher and in both workers: the job's front end and writer are numpy.
    result = run_cli("beam_jobs.preprocess", f"--cv_dir={corpus_dir}/en", f"--cv_dir={corpus_dir}/de",
                     f"--output_dir={out}", "--limit_clips=24", "--split_fractions=0.5,0.25,0.25", "--seed=11",
                     env=without_tensorflow(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    # A refused import inside a clip's work would be that clip's rejection, not the job's failure.
    assert "refused" not in result.stderr and "refused" not in (out / "rejected-00000-of-00001.tsv").read_text()
    assert "Rejected:" in result.stdout and "train" in result.stdout
    assert "Verified:" in result.stdout and "every shard as planned" in result.stdout
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["clip_funnel"]["after_limit"] == 24
    assert sum(metadata["splits"]["train"]["blocks"].values()) > 0
    # Not a terminal: progress comes as log lines, the last one with every clip done.
    to_decode = metadata["clip_funnel"]["after_clip_balance"]
    progress_lines = [line for line in result.stderr.splitlines() if "Progress:" in line]
    assert progress_lines and f"decoded {to_decode}/{to_decode} clips (100%)" in progress_lines[-1]
    assert "clips/s" in progress_lines[-1]
    # TensorFlow's start-up lines from the launcher and both workers are gone.
    assert not [line for line in result.stderr.splitlines() if console.is_noise(line)]
    assert "cuInit" not in result.stderr and "cudart" not in result.stderr
    assert not [name for name in os.listdir(out) if name.startswith(spill.SPILL_PREFIX)]
    again = run_cli("beam_jobs.preprocess", f"--cv_dir={corpus_dir}", f"--output_dir={out}")
    assert again.returncode != 0 and "--overwrite" in again.stderr


@pytest.mark.slow
def test_in_memory_and_multiprocessing_runners_write_identical_records(corpus_dir, tmp_path):
    # Both through the CLI, so that both run with the same process settings
    # (the malloc tuning, one FFT thread per worker); only the runner differs.
    outputs = {}
    for mode in ("in_memory", "multi_processing"):
        out = tmp_path / mode
        result = run_cli("beam_jobs.preprocess", f"--cv_dir={corpus_dir}", f"--output_dir={out}",
                         "--split_fractions=0.5,0.25,0.25", "--max_blocks_per_clip=3", "--seed=11",
                         "--target_shard_mb=0.2", "--nobalance_clips", "--runner=DirectRunner",
                         f"--direct_running_mode={mode}", "--direct_num_workers=2")
        assert result.returncode == 0, result.stderr[-3000:]
        shards = {p.name: p.read_bytes() for p in out.glob("*.tfrecord")}
        outputs[mode] = (json.loads((out / features.METADATA_FILENAME).read_text()), shards)
        assert not [p for p in out.iterdir() if p.name.startswith(spill.SPILL_PREFIX)]  # spill files removed
    (meta_a, shards_a), (meta_b, shards_b) = outputs.values()
    assert len(shards_a) > 3 and shards_a.keys() == shards_b.keys()
    for name in shards_a:
        assert shards_a[name] == shards_b[name], name  # byte-identical: same records, same order
    for key in ("splits", "shards", "clip_funnel", "rejected", "blocks_read_back"):
        assert meta_a[key] == meta_b[key], key
    assert np.allclose(meta_a["normalization"]["mean"], meta_b["normalization"]["mean"], rtol=0, atol=1e-9)


@pytest.mark.slow
def test_a_failed_run_removes_its_spill_files(corpus_dir, tmp_path, monkeypatch):
    from beam_jobs import write

    def broken(shard, planned):
        raise write.ShardCheckError(f"{shard.path}: simulated loss")

    monkeypatch.setattr(write, "read_back", broken)
    out = tmp_path / "out"
    config = job.PreprocessConfig(cv_dirs=(corpus_dir,), output_dir=str(out), split_fractions=(0.5, 0.25, 0.25),
                                  max_blocks_per_clip=2, seed=7, limit_clips=12)
    with pytest.raises(Exception, match="simulated loss"):
        job.run(config, IN_PROCESS_BEAM)
    assert not (out / features.METADATA_FILENAME).exists()  # a failed check never commits metadata
    left = os.listdir(out)
    assert not [n for n in left if n.startswith(spill.SPILL_PREFIX) or n.startswith("beam-temp")], left
    # What the failed run did write is listed, so a later --overwrite can remove it.
    listed = json.load(open(out / outputs.MANIFEST_FILENAME))["files"]
    assert sorted(listed + [outputs.MANIFEST_FILENAME]) == sorted(left)


@pytest.mark.slow
def test_dataflow_dry_run_builds_offline(tmp_path):
    result = run_cli(
        "beam_jobs.preprocess", "--cv_dir=gs://no-such-bucket/cv-corpus/en", "--cv_dir=gs://no-such-bucket/cv2",
        "--output_dir=gs://no-such-bucket/out", "--runner=DataflowRunner", "--project=my-project",
        "--region=us-central1", "--temp_location=gs://no-such-bucket/tmp", "--setup_file=./pyproject.toml",
        "--dry_run=True", timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Dry run" in result.stderr


@pytest.mark.slow
def test_make_sample_corpus_cli(tmp_path):
    result = run_cli("beam_jobs.make_sample_corpus", f"--output_dir={tmp_path}", "--speakers_per_gender=1",
                     "--clips_per_speaker=1")
    assert result.returncode == 0, result.stderr[-2000:]
    for locale in ("en", "de"):
        assert (tmp_path / locale / "validated.tsv").exists()
    assert len(os.listdir(tmp_path / "en" / "clips")) == 2 + 6  # good clips + bad files that exist


@pytest.mark.slow
def test_without_clip_balance_every_clip_is_decoded_and_blocks_still_balance(corpus_dir, tmp_path):
    config = job.PreprocessConfig(cv_dirs=(corpus_dir,), output_dir=str(tmp_path), split_fractions=(0.5, 0.25, 0.25),
                                  max_blocks_per_clip=3, seed=5, balance_clips=False)
    metadata = job.run(config, IN_PROCESS)
    funnel = metadata["clip_funnel"]
    assert funnel["after_clip_balance"] == funnel["after_split"]
    assert funnel["decoded"] == funnel["after_split"] - metadata["rejected"].get("too_short", 0) - sum(
        metadata["rejected"].get(r, 0) for r in ("missing_file", "empty_file", "undecodable", "no_audio", "silent"))
    blocks = metadata["splits"]["train"]["blocks"]
    assert abs(blocks["male"] - blocks["female"]) <= 0.35 * max(blocks.values())
    assert metadata["flags"]["balance_clips"] is False


def test_augmented_copies_are_train_records_marked_in_records_and_metadata(corpus_dir, tmp_path):
    config = job.PreprocessConfig(cv_dirs=(corpus_dir,), output_dir=str(tmp_path), split_fractions=(0.5, 0.25, 0.25),
                                  max_blocks_per_clip=3, seed=11, augment_copies=1)
    metadata = job.run(config, IN_PROCESS)
    fs = config.feature_set
    train = read_split(str(tmp_path), "train", fs)
    marked = [r for r in train if r[features.AUGMENTATION_KEY]]
    assert marked and len(marked) < len(train)
    assert all(r[features.CLIP_ID_KEY].decode().endswith("#aug0") for r in marked)
    assert all(r[features.AUGMENTATION_KEY].decode().startswith("f0x") for r in marked)
    # A copy keeps its recording's speaker (the split stays speaker-disjoint) and label.
    recorded = {r[features.CLIP_ID_KEY].decode(): r for r in train if not r[features.AUGMENTATION_KEY]}
    speakers = {r[features.SPEAKER_ID_KEY] for r in train}
    for split in ("validation", "test"):
        held_out = read_split(str(tmp_path), split, fs)
        assert not any(r[features.AUGMENTATION_KEY] for r in held_out)
        assert not speakers & {r[features.SPEAKER_ID_KEY] for r in held_out}
    for r in marked:
        original = recorded.get(r[features.CLIP_ID_KEY].decode().removesuffix("#aug0"))
        if original is not None:  # block balance may have dropped the recording's blocks
            assert (r[features.SPEAKER_ID_KEY], r[features.LABEL_KEY]) == (
                original[features.SPEAKER_ID_KEY], original[features.LABEL_KEY])
    splits = metadata["splits"]
    assert sum(splits["train"]["augmented_blocks"].values()) == len(marked)
    assert sum(splits["train"]["augmented_clips"].values()) == len({r[features.CLIP_ID_KEY] for r in marked})
    assert all(sum(splits[s]["augmented_blocks"].values()) == 0 for s in ("validation", "test"))
    assert metadata["flags"]["augment_copies"] == 1
    assert metadata["clip_funnel"]["augmented_copies"] > 0
    assert metadata["clip_funnel"]["written"] <= metadata["clip_funnel"]["decoded"]  # recordings only
    blocks = splits["train"]["blocks"]
    assert abs(blocks["male"] - blocks["female"]) <= 0.35 * max(blocks.values())


def test_augment_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="augment_copies needs 16000 Hz"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir="y", feature_set=features.STFT_SEED, augment_copies=1)
    with pytest.raises(ValueError, match="augment_fraction"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir="y", augment_copies=1, augment_fraction=1.5)
    with pytest.raises(ValueError, match="augment_female_lowered"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir="y", augment_copies=1, augment_female_lowered=-0.1)
    with pytest.raises(ValueError, match="augment_max_f0_factor"):
        job.PreprocessConfig(cv_dirs=("x",), output_dir="y", augment_copies=1, augment_max_f0_factor=1.0)


def test_the_ina_feature_set_runs_through_the_job_and_parses(corpus_dir, tmp_path):
    """features.INA_MEL (issue 21's front end) is a feature set like the others: the job writes it, the input reads it."""
    from tests.conftest import _preprocess

    out = _preprocess(corpus_dir, str(tmp_path / "ina"), features.INA_MEL)
    metadata = json.loads((tmp_path / "ina" / features.METADATA_FILENAME).read_text())
    assert metadata["feature_set"]["name"] == "ina_mel" and metadata["feature_set"]["block_shape"] == [68, 24]
    records = read_split(out, "train", features.INA_MEL)
    assert records and all(r[features.BLOCK_KEY].shape == (68, 24) for r in records)
    assert all(np.isfinite(r[features.BLOCK_KEY]).all() for r in records)
    assert np.isfinite(metadata["normalization"]["mean"]).all() and len(metadata["normalization"]["mean"]) == 24
