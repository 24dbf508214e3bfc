"""The tf.data input function on the Beam job's real output (generated corpus)."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from pipeline import augment, features, inputs, metadata


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
    assert len(labels) == metadata.split_blocks(meta, features.TRAIN)
    assert int(labels.sum()) == meta["splits"][features.TRAIN]["blocks"]["female"]
    # Normalized with the train statistics: per-bin mean ~0 and std ~1 on train.
    assert np.abs(blocks.mean(axis=(0, 1))).max() < 0.05
    np.testing.assert_allclose(blocks.std(axis=(0, 1)), 1.0, atol=0.05)
    assert len(set(clips)) == sum(meta["splits"][features.TRAIN]["clips"].values())


def test_training_input_shuffles_augments_repeats_and_is_seeded(log_mel_data):
    _, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=8, is_training=True, repeat=True,
                                deterministic=True, seed=7, augment=augment.AugmentConfig())
    first = [b.numpy() for b, _ in inputs.make_dataset(config, fs, norm).take(40)]
    again = [b.numpy() for b, _ in inputs.make_dataset(config, fs, norm).take(40)]
    assert len(first) == 40  # repeats past the end of the split
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    masked_cells = np.mean(np.stack(first) == 0)
    assert 0.05 < masked_cells < 0.5  # SpecAugment is on
    plain = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=8, deterministic=True)
    assert np.mean(next(iter(inputs.make_dataset(plain, fs, norm)))[0].numpy() == 0) == 0


def test_evaluation_never_augments(log_mel_data):
    _, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.VALIDATION, batch_size=64, augment=augment.AugmentConfig())
    blocks, _ = next(iter(inputs.make_dataset(config, fs, norm)))
    assert np.mean(blocks.numpy() == 0) == 0


@pytest.mark.parametrize("pipelines", [2, 5])
def test_input_context_shards_disjointly_and_completely(log_mel_data, pipelines):
    # 2 pipelines shard files (there are more shards); 5 may shard records.
    _, fs, norm = _load(log_mel_data)
    config = inputs.InputConfig(log_mel_data, features.TRAIN, batch_size=4 * pipelines, with_info=True,
                                deterministic=True)
    seen = []
    for pid in range(pipelines):
        ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid,
                                         num_replicas_in_sync=pipelines)
        ds = inputs.make_dataset(config, fs, norm, ctx)
        assert ds.element_spec[0].shape[0] in (None, 4)
        _, _, clips = _collect(ds)
        blocks = [c for c in clips]
        seen.append(blocks)
    everything = _collect(inputs.make_dataset(config, fs, norm))[2]
    assert sorted(sum(seen, [])) == sorted(everything)
    assert len(inputs.list_shards(log_mel_data, features.TRAIN)) >= 2


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
        metadata.check_compatible({**meta, "format_version": 0}, features.LOG_MEL, log_mel_data)


def test_missing_metadata_or_shards_name_the_path(tmp_path, log_mel_data):
    with pytest.raises(FileNotFoundError, match=r"metadata.json.*beam_jobs.preprocess"):
        metadata.read_metadata(str(tmp_path))
    copy = tmp_path / "copy"
    os.makedirs(copy)
    shutil.copy(os.path.join(log_mel_data, features.METADATA_FILENAME), copy)
    with pytest.raises(FileNotFoundError, match="train-"):
        inputs.list_shards(str(copy), features.TRAIN)
    assert json.loads((copy / features.METADATA_FILENAME).read_text())["format_version"] == features.FORMAT_VERSION
