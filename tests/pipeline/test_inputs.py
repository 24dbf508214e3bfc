"""The tf.data input function on the Beam job's real output (generated corpus)."""

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from pipeline import augment, features, inputs, metadata, records


def _load(data_dir):
    meta = metadata.read_metadata(data_dir)
    return meta, metadata.check_compatible(meta, features.LOG_MEL, data_dir), metadata.Normalizer.from_metadata(meta)


def _collect(ds):
    blocks, labels, clips = [], [], []
    for b, y, info in ds:
        blocks.append(b.numpy())
        labels.append(y.numpy())
        clips.append(info[features.CLIP_ID_KEY].numpy())
    return np.concatenate(blocks), np.concatenate(labels), np.concatenate(clips)


def test_eval_input_reads_every_block_once_normalized(log_mel_data):
    meta, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=7, with_info=True)
    blocks, labels, clips = _collect(inputs.make_dataset(config, fs, norm))
    assert blocks.shape[1:] == fs.block_shape and blocks.dtype == np.float32
    assert len(labels) == meta.blocks(features.TRAIN)
    assert int(labels.sum()) == meta.splits[features.TRAIN].blocks["female"]
    # Normalized with the train statistics: per-bin mean ~0 and std ~1 on train.
    assert np.abs(blocks.mean(axis=(0, 1))).max() < 0.05
    np.testing.assert_allclose(blocks.std(axis=(0, 1)), 1.0, atol=0.05)
    assert len(set(clips)) == sum(meta.splits[features.TRAIN].clips.values())
    assert len(set(_block_ids(inputs.make_dataset(config, fs, norm)))) == len(labels)  # each block once


@pytest.mark.slow
def test_training_input_shuffles_augments_repeats_and_is_seeded(log_mel_data):
    _, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=8, is_training=True, repeat=True,
                                read=inputs.ReadOptions(deterministic=True), seed=7, augment=augment.AugmentConfig())
    first = [b.numpy() for b, _ in inputs.make_dataset(config, fs, norm).take(40)]
    again = [b.numpy() for b, _ in inputs.make_dataset(config, fs, norm).take(40)]
    assert len(first) == 40  # repeats past the end of the split
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    masked_cells = np.mean(np.stack(first) == 0)
    assert 0.05 < masked_cells < 0.5  # SpecAugment is on
    plain = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=8, read=inputs.ReadOptions(deterministic=True))
    assert np.mean(next(iter(inputs.make_dataset(plain, fs, norm)))[0].numpy() == 0) == 0


def test_evaluation_never_augments(log_mel_data):
    _, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.VALIDATION, batch_size=64, augment=augment.AugmentConfig())
    blocks, _ = next(iter(inputs.make_dataset(config, fs, norm)))
    assert np.mean(blocks.numpy() == 0) == 0


def _block_ids(ds) -> list[tuple[bytes, int]]:
    """(clip id, block index) of every block, in order: a block's identity."""
    return [(c, int(i)) for _, _, info in ds
            for c, i in zip(info[features.CLIP_ID_KEY].numpy(), info[features.BLOCK_INDEX_KEY].numpy(), strict=True)]


@pytest.mark.parametrize("sharded", ["files", "records"])
def test_input_context_shards_disjointly_and_completely(log_mel_data, sharded):
    # 2 pipelines shard files; one more pipeline than shards shards records.
    _, fs, norm = _load(log_mel_data)
    shards = len(inputs.list_shards(log_mel_data, features.TRAIN))
    assert shards >= 2
    pipelines = 2 if sharded == "files" else shards + 1
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=4 * pipelines, with_info=True,
                                read=inputs.ReadOptions(deterministic=True))
    everything = _block_ids(inputs.make_dataset(config, fs, norm))
    assert len(set(everything)) == len(everything)  # the ids identify blocks
    seen = []
    for pid in range(pipelines):
        ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid,
                                         num_replicas_in_sync=pipelines)
        ds = inputs.make_dataset(config, fs, norm, ctx)
        sizes = [len(labels) for _, labels, _ in ds]
        assert sizes and set(sizes[:-1]) <= {4} and 0 < sizes[-1] <= 4  # the per-replica batch size
        seen.append(set(_block_ids(ds)))
    assert sum(map(len, seen)) == len(everything)  # disjoint ...
    assert set().union(*seen) == set(everything)  # ... and complete


@pytest.mark.slow
def test_training_batches_are_augment_batch_with_the_batch_seed(log_mel_data):
    # Pins the seed contract: pipeline p's batch i is augmented with batch_seed(seed, i, pipelines, p).
    _, fs, _ = _load(log_mel_data)
    identity = metadata.Normalizer(np.zeros(fs.num_bins, np.float32), np.ones(fs.num_bins, np.float32))
    aug = augment.AugmentConfig(tilt_db=3.0, noise_prob=0.5, lowpass_prob=0.5, freq_warp=0.05)
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    common = dict(batch_size=8, is_training=True, repeat=True, read=inputs.ReadOptions(deterministic=True), seed=11)
    raw = inputs.make_dataset(inputs.InputConfig(log_mel_data, features.TRAIN, **common), fs, identity, ctx)
    augmented = inputs.make_dataset(inputs.InputConfig(log_mel_data, features.TRAIN, augment=aug, **common), fs,
                                    identity, ctx)
    for i, ((blocks, _), (expected, _)) in enumerate(zip(raw.take(3), augmented.take(3), strict=True)):
        seed = augment.batch_seed(11, tf.constant(i, tf.int64), 2, 1)
        np.testing.assert_allclose(augment.augment_batch(blocks, seed, aug, fs, identity), expected, atol=1e-5)


def test_with_clean_yields_the_augmented_blocks_and_the_same_blocks_unaugmented(log_mel_data):
    _, fs, normalizer = _load(log_mel_data)
    aug = augment.AugmentConfig(tilt_db=3.0, noise_prob=1.0)
    common = dict(batch_size=8, is_training=True, repeat=True, read=inputs.ReadOptions(deterministic=True), seed=3,
                  augment=aug)
    plain = inputs.make_dataset(inputs.InputConfig(log_mel_data, features.TRAIN, **common), fs, normalizer)
    unaugmented = inputs.make_dataset(inputs.InputConfig(log_mel_data, features.TRAIN, **{**common, "augment": None}),
                                      fs, normalizer)
    both = inputs.make_dataset(inputs.InputConfig(log_mel_data, features.TRAIN, with_clean=True, **common), fs,
                               normalizer)
    for (augmented, labels), (clean, _), ((pair_augmented, pair_clean), pair_labels) in zip(
            plain.take(2), unaugmented.take(2), both.take(2), strict=True):
        np.testing.assert_array_equal(pair_augmented, augmented)
        np.testing.assert_array_equal(pair_clean, clean)
        np.testing.assert_array_equal(pair_labels, labels)
        assert np.abs(pair_augmented.numpy() - pair_clean.numpy()).max() > 0.1


def test_drop_remainder_gives_static_batches(log_mel_data):
    _, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=4, drop_remainder=True)
    assert inputs.make_dataset(config, fs, norm).element_spec[0].shape.as_list() == [4, *fs.block_shape]


def test_under_a_strategy(log_mel_data):
    _, fs, norm = _load(log_mel_data)
    strategy = tf.distribute.get_strategy()
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=6)
    dist = strategy.distribute_datasets_from_function(lambda ctx: inputs.make_dataset(config, fs, norm, ctx))
    blocks, labels = next(iter(dist))
    assert blocks.shape == (6, *fs.block_shape) and labels.shape == (6,)


def test_mismatched_features_or_version_are_refused(log_mel_data, tmp_path):
    meta = metadata.read_metadata(log_mel_data)
    with pytest.raises(metadata.DataMismatchError, match=r"num_bins: data 64, model 513"):
        metadata.check_compatible(meta, features.STFT_SEED, log_mel_data)
    with pytest.raises(metadata.DataMismatchError, match="format_version 0"):
        metadata.check_compatible(dataclasses.replace(meta, format_version=0), features.LOG_MEL, log_mel_data)


def test_missing_metadata_or_shards_name_the_path(tmp_path, log_mel_data):
    with pytest.raises(FileNotFoundError, match=r"metadata.json.*beam_jobs.preprocess"):
        metadata.read_metadata(str(tmp_path))
    copy = tmp_path / "copy"
    os.makedirs(copy)
    shutil.copy(os.path.join(log_mel_data, features.METADATA_FILENAME), copy)
    with pytest.raises(FileNotFoundError, match="train-"):
        inputs.list_shards(str(copy), features.TRAIN)
    assert json.loads((copy / features.METADATA_FILENAME).read_text())["format_version"] == features.FORMAT_VERSION


def _write_shards(root, count: int = 3, per_shard: int = 6, nan_at: tuple[int, int] | None = None) -> str:
    """``count`` train shards of random log-mel blocks; (shard, record) ``nan_at`` gets a NaN cell."""
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    for shard in range(count):
        with tf.io.TFRecordWriter(os.path.join(root, features.shard_name(features.TRAIN, shard, count))) as w:
            for record in range(per_shard):
                block = rng.normal(size=features.LOG_MEL.block_shape).astype(np.float32)
                if (shard, record) == nan_at:
                    block[2, 3] = np.nan
                w.write(records.encode_block(block, record % 2, f"en/{shard}-{record}", "s", record))
    return str(root)


_IDENTITY = metadata.Normalizer(np.zeros(64, np.float32), np.ones(64, np.float32))


def test_a_non_finite_block_stops_the_input_naming_its_shard(tmp_path):
    data = _write_shards(tmp_path, nan_at=(2, 4))
    bad = os.path.join(data, features.shard_name(features.TRAIN, 2, 3))
    config = inputs.InputConfig(data, features.TRAIN, batch_size=4, is_training=True, augment=augment.AugmentConfig())
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(f"{inputs.NON_FINITE_MESSAGE} {bad}")) as e:
        list(inputs.make_dataset(config, features.LOG_MEL, _IDENTITY))
    error = inputs.shard_error(e.value, inputs.list_shards(data, features.TRAIN))
    assert isinstance(error, inputs.ShardError) and bad in str(error)
    # Switched off, the NaN reaches the batches.
    unchecked = dataclasses.replace(config, check_finite=False, augment=None)
    assert not np.isfinite(np.concatenate([b for b, _ in inputs.make_dataset(unchecked, features.LOG_MEL,
                                                                               _IDENTITY)])).all()


def test_a_truncated_shard_is_named(tmp_path):
    data = _write_shards(tmp_path)
    files = inputs.list_shards(data, features.TRAIN)
    assert inputs.find_corrupt_shards(files) == []
    os.truncate(files[1], os.path.getsize(files[1]) - 10)
    with pytest.raises(tf.errors.DataLossError) as e:
        list(inputs.make_dataset(inputs.InputConfig(data, features.TRAIN, batch_size=4), features.LOG_MEL,
                                 _IDENTITY))
    assert files[1] not in str(e.value)  # tf.data does not say which file ...
    error = inputs.shard_error(e.value, files)  # ... this does
    assert isinstance(error, inputs.ShardError)
    assert re.search(re.escape(files[1]) + r": truncated record at byte \d+ \(record 5", str(error))
    assert inputs.shard_error(tf.errors.InvalidArgumentError(None, None, "other"), files) is None
