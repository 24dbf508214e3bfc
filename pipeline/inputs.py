"""The tf.data input function: preprocessed TFRecord shards to model batches.

The order of operations follows TF Model Garden's ``input_reader.py``: list
shards, seeded file shuffle, shard per input pipeline, parallel interleave,
(cache), repeat, shuffle, batch, batched parse, finite check, normalize,
augment, prefetch.

Every record travels with its shard's index, so a non-finite block stops the
input with an error naming the shard; a corrupt shard (tf.data's
``DataLossError`` does not say which file) is found by ``find_corrupt_shards``.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from pipeline import augment, examples, features, tfrecords
from pipeline.metadata import Normalizer

AUTOTUNE = tf.data.AUTOTUNE
# Starts the message of the input function's finite check; the shard's path follows it.
NON_FINITE_MESSAGE = "non-finite value (NaN or inf) in a block of shard"


class ShardError(ValueError):
    """A shard that cannot be read or trained on (corrupt framing, non-finite blocks); names the file."""


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How the records are read, whatever the split: one declaration for ``InputConfig`` and ``TrainConfig``
    (whose flags ``--shuffle_buffer``, ``--deterministic`` and ``--cache`` derive from it).

    Attributes:
      shuffle_buffer: examples in the training shuffle buffer.
      deterministic: reproducible input order (slower).
      cache: keep decoded records in memory after the first epoch.
    """

    shuffle_buffer: int = 10_000
    deterministic: bool = False
    cache: bool = False


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """How to read one split.

    Attributes:
      data_dir: output directory of ``beam_jobs.preprocess`` (local or gs://).
      split: ``train``, ``validation`` or ``test``.
      batch_size: global batch size; each input pipeline gets its per-replica share.
      is_training: shuffle files and examples, and augment (when ``augment`` is set).
      repeat: repeat forever (training, and validation under distribution).
      seed: seeds the file order, the shuffle and the augmentation.
      read: shuffle buffer, deterministic order, cache (``ReadOptions``).
      drop_remainder: static batch shapes (required on TPU).
      cycle_length: files read in parallel.
      augment: augmentation settings; None disables it.
      with_info: also yield a dict with clip id, speaker, age and accent
        (for evaluation; not for ``fit``).
      check_finite: stop with an error naming the shard when a parsed block
        holds NaN or inf (``NON_FINITE_MESSAGE``).
      with_clean: yield ``((augmented, clean), labels)``, the same blocks
        normalized but not augmented beside them (consistency training).
    """

    data_dir: str
    split: str
    batch_size: int
    is_training: bool = False
    repeat: bool = False
    seed: int = 42
    read: ReadOptions = ReadOptions()
    drop_remainder: bool = False
    cycle_length: int = 8
    augment: augment.AugmentConfig | None = None
    with_info: bool = False
    check_finite: bool = True
    with_clean: bool = False


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
      Iterating raises ``tf.errors.InvalidArgumentError`` starting with
      ``NON_FINITE_MESSAGE`` and naming the shard on a non-finite block (with
      ``check_finite``).
    """
    files = list_shards(config.data_dir, config.split)
    batch_size, num_pipelines, pipeline_id = config.batch_size, 1, 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(config.batch_size)
        num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id

    ds = _records_with_paths(files, config, num_pipelines, pipeline_id)
    if config.read.cache:
        ds = ds.cache()
    if config.repeat:
        ds = ds.repeat()
    if config.is_training:
        ds = ds.shuffle(config.read.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=config.drop_remainder, num_parallel_calls=AUTOTUNE,
                  deterministic=config.read.deterministic)
    parse = _parse_fn(config, feature_set, normalizer, files, num_pipelines, pipeline_id)
    ds = ds.enumerate().map(parse, num_parallel_calls=AUTOTUNE, deterministic=config.read.deterministic)
    options = tf.data.Options()
    options.deterministic = config.read.deterministic
    # Sharding is done above, explicitly; tf.distribute must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(AUTOTUNE)


def _records_with_paths(files: list[str], config: InputConfig, num_pipelines: int,
                        pipeline_id: int) -> tf.data.Dataset:
    """(serialized record, shard index in ``files``) pairs of this input pipeline's share, interleaved over files."""
    ds = tf.data.Dataset.from_tensor_slices((files, tf.range(len(files))))
    if config.is_training:
        ds = ds.shuffle(len(files), seed=config.seed, reshuffle_each_iteration=True)
    # Shard files when every pipeline gets at least one; otherwise shard records.
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if shard_files:
        ds = ds.shard(num_pipelines, pipeline_id)

    def read(path, index):
        # zip with a repeated constant: the shard's index (an int32, cheaper to batch than its path)
        # rides along without a per-record function call.
        records = tf.data.TFRecordDataset(path, compression_type=features.SHARD_COMPRESSION)
        return tf.data.Dataset.zip((records, tf.data.Dataset.from_tensors(index).repeat()))

    ds = ds.interleave(read, cycle_length=min(config.cycle_length, len(files)), num_parallel_calls=AUTOTUNE,
                       deterministic=config.read.deterministic)
    if num_pipelines > 1 and not shard_files:
        ds = ds.shard(num_pipelines, pipeline_id)
    return ds


def _check_finite(blocks: tf.Tensor, shards: tf.Tensor, files: list[str]) -> tf.Tensor:
    """``blocks``, after a check that fails naming the first shard (of ``files``) with a non-finite block."""

    def fail():
        # Only on failure: find the first bad record's shard for the message.
        finite = tf.reduce_all(tf.math.is_finite(blocks), axis=[1, 2])
        bad = tf.strings.reduce_join(tf.gather(files, tf.boolean_mask(shards, ~finite)[:1]))
        check = tf.debugging.Assert(False, [tf.strings.join([NON_FINITE_MESSAGE, " ", bad])])
        with tf.control_dependencies([check]):
            return tf.identity(blocks)

    return tf.cond(tf.reduce_all(tf.math.is_finite(blocks)), lambda: blocks, fail)


def _parse_fn(config: InputConfig, feature_set: features.FeatureSet, normalizer: Normalizer, files: list[str],
              num_pipelines: int, pipeline_id: int):
    """The map function: (batch index, (serialized, shard indices)) -> normalized (augmented) blocks, labels[, info]."""
    augment_config = config.augment if config.is_training else None

    def parse(batch_index, batch):
        serialized, shards = batch
        # Parsing a whole batch at once is cheaper than per example (see WORKSPACE.md).
        parsed = examples.parse_blocks(serialized, feature_set)
        blocks = parsed[features.BLOCK_KEY]
        if config.check_finite:
            blocks = _check_finite(blocks, shards, files)
        labels = tf.cast(parsed[features.LABEL_KEY], tf.float32)
        # Normalized only where used: the training input's blocks are augmented before they are normalized.
        clean = normalizer(blocks) if augment_config is None or config.with_clean else None
        if augment_config is not None:
            seed = augment.batch_seed(config.seed, batch_index, num_pipelines, pipeline_id)
            blocks = augment.augment_batch(blocks, seed, augment_config, feature_set, normalizer)
        else:
            blocks = clean
        if config.with_clean:
            blocks = (blocks, clean)
        if config.with_info:
            return blocks, labels, {key: parsed[key] for key in features.INFO_KEYS}
        return blocks, labels

    return parse


def find_corrupt_shards(files: list[str]) -> list[str]:
    """Reads every record's framing and checksums; one message per corrupt file.

    tf.data's ``DataLossError`` ("truncated record", "corrupted record") does
    not name the file; this finds it, at the cost of reading the files once.

    Args:
      files: shard paths (local or gs://).

    Returns:
      ``tfrecords.CorruptRecordError`` messages (file, byte offset, record), empty when every file is sound.
    """
    problems = []
    for path in files:
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                tfrecords.count_records(f, path)
        except tfrecords.CorruptRecordError as e:
            problems.append(str(e))
    return problems


def shard_error(error: tf.errors.OpError, files: list[str]) -> ShardError | None:
    """Turns an input error raised while iterating ``make_dataset`` into a ``ShardError`` naming the shard(s).

    Args:
      error: what iterating raised.
      files: the shards that were being read.

    Returns:
      The ``ShardError``, or None when ``error`` is not about the input's data.
    """
    message = str(error)
    if isinstance(error, tf.errors.InvalidArgumentError) and NON_FINITE_MESSAGE in message:
        start = message.index(NON_FINITE_MESSAGE)
        detail = message[start:].splitlines()[0].split("]")[0].strip()
        return ShardError(f"{detail}; the job never writes one: re-run beam_jobs.preprocess for this data")
    if isinstance(error, tf.errors.DataLossError):
        problems = find_corrupt_shards(files) or [f"{error.message} (in one of {len(files)} shards; none is "
                                                  "corrupt now: was one being rewritten?)"]
        return ShardError("corrupt TFRecord shard(s): " + "; ".join(problems))
    return None


def iterate_checked(dataset: tf.data.Dataset, files: list[str]):
    """Iterates ``dataset`` (made by ``make_dataset`` from ``files``), its data errors raised as ``ShardError``.

    Every reader of the shards goes through this (or ``shard_error``), so a
    truncated shard is one line naming the file and the byte offset, never a
    ``DataLossError`` traceback that names no file.

    Raises:
      ShardError: a corrupt shard or a non-finite block, naming the shard.
    """
    iterator = iter(dataset)
    while True:
        try:
            element = next(iterator)
        except StopIteration:
            return
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            error = shard_error(e, files)
            if error is None:
                raise
            raise error from None
        yield element
