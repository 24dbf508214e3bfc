"""The tf.data input function: preprocessed TFRecord shards to model batches.

The order of operations follows TF Model Garden's ``input_reader.py``: list
shards, seeded file shuffle, shard per input pipeline, parallel interleave,
(cache), repeat, shuffle, batch, batched parse, normalize, augment, prefetch.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from pipeline import augment, examples, features
from pipeline.metadata import Normalizer

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """How to read one split.

    Attributes:
      data_dir: output directory of ``beam_jobs.preprocess`` (local or gs://).
      split: ``train``, ``validation`` or ``test``.
      batch_size: global batch size; each input pipeline gets its per-replica share.
      is_training: shuffle files and examples, and augment (when ``augment`` is set).
      repeat: repeat forever (training, and validation under distribution).
      shuffle_buffer: examples in the shuffle buffer.
      seed: seeds the file order, the shuffle and the augmentation.
      deterministic: keep element order reproducible (slower interleave).
      cache: cache parsed-before records in memory after the first pass.
      drop_remainder: static batch shapes (required on TPU).
      cycle_length: files read in parallel.
      augment: augmentation settings; None disables it.
      with_info: also yield a dict with clip id, speaker, age and accent
        (for evaluation; not for ``fit``).
    """

    data_dir: str
    split: str
    batch_size: int
    is_training: bool = False
    repeat: bool = False
    shuffle_buffer: int = 10_000
    seed: int = 42
    deterministic: bool = False
    cache: bool = False
    drop_remainder: bool = False
    cycle_length: int = 8
    augment: augment.AugmentConfig | None = None
    with_info: bool = False


def list_shards(data_dir: str, split: str) -> list[str]:
    """Sorted shard paths of ``split``.

    Raises:
      FileNotFoundError: when the split has no shards.
    """
    pattern = os.path.join(data_dir, features.shard_pattern(split))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord shards match {pattern}")
    return files


def make_dataset(
    config: InputConfig,
    feature_set: features.FeatureSet,
    normalizer: Normalizer,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Builds the dataset of ``(blocks, labels)`` batches.

    Args:
      config: what to read and how.
      feature_set: the data's features (checked against metadata by the caller).
      normalizer: training-split mean/std.
      input_context: given by ``distribute_datasets_from_function``; decides the
        per-replica batch size and this pipeline's shard.

    Returns:
      Batches of float32 ``[batch, frames, bins]`` normalized blocks and float32
      ``[batch]`` labels (1.0 = female), plus an info dict with ``with_info``.
    """
    files = list_shards(config.data_dir, config.split)
    batch_size = config.batch_size
    num_pipelines, pipeline_id = 1, 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(config.batch_size)
        num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id

    ds = tf.data.Dataset.from_tensor_slices(files)
    if config.is_training:
        ds = ds.shuffle(len(files), seed=config.seed, reshuffle_each_iteration=True)
    # Shard files when every pipeline gets at least one; otherwise shard records.
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if shard_files:
        ds = ds.shard(num_pipelines, pipeline_id)
    ds = ds.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=features.SHARD_COMPRESSION),
        cycle_length=min(config.cycle_length, len(files)),
        num_parallel_calls=AUTOTUNE,
        deterministic=config.deterministic,
    )
    if num_pipelines > 1 and not shard_files:
        ds = ds.shard(num_pipelines, pipeline_id)
    if config.cache:
        ds = ds.cache()
    if config.repeat:
        ds = ds.repeat()
    if config.is_training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=config.drop_remainder, num_parallel_calls=AUTOTUNE,
                  deterministic=config.deterministic)

    augment_config = config.augment if config.is_training else None

    def parse(batch_index, serialized):
        # Parsing a whole batch at once is cheaper than per example (see WORKSPACE.md).
        parsed = examples.parse_blocks(serialized, feature_set)
        blocks = parsed[features.BLOCK_KEY]
        labels = tf.cast(parsed[features.LABEL_KEY], tf.float32)
        if augment_config is not None:
            seed = tf.stack([tf.cast(config.seed, tf.int64), batch_index * num_pipelines + pipeline_id])
            seed_gain, seed_mask, seed_spectrum = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
            if augment_config.changes_spectrum:
                blocks = augment.spectral_changes(blocks, seed_spectrum, augment_config, feature_set)
            if augment_config.gain_db > 0:
                blocks = augment.random_gain(blocks, seed_gain, augment_config.gain_db, feature_set)
            blocks = augment.spec_augment(normalizer(blocks), seed_mask, augment_config)
        else:
            blocks = normalizer(blocks)
        if config.with_info:
            info = {key: parsed[key] for key in (features.CLIP_ID_KEY, features.SPEAKER_ID_KEY,
                                                 features.BLOCK_INDEX_KEY, features.AGE_KEY, features.ACCENT_KEY)}
            return blocks, labels, info
        return blocks, labels

    ds = ds.enumerate().map(parse, num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    options = tf.data.Options()
    options.deterministic = config.deterministic
    # Sharding is done above, explicitly; tf.distribute must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)
