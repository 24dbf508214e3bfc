"""The training run's data: metadata checks and the distributed train/validation datasets."""

from __future__ import annotations

import dataclasses
import math
import os

import tensorflow as tf

from model.train.config import TrainConfig
from model.train.strategy import is_tpu
from pipeline import features, inputs, tfrecords
from pipeline.metadata import DataMismatchError, Normalizer, check_compatible, read_metadata


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a run needs to know about its data directory before reading a record."""

    feature_set: features.FeatureSet
    normalizer: Normalizer
    train_blocks: int
    validation_blocks: int


@dataclasses.dataclass
class Datasets:
    """The distributed datasets ``fit`` consumes, with their step counts."""

    train: tf.distribute.DistributedDataset
    validation: tf.distribute.DistributedDataset | None
    steps_per_epoch: int
    validation_steps: int
    files: list[str]  # every shard read, to name a corrupt or non-finite one


def read_training_data(config: TrainConfig) -> TrainingData:
    """Reads and checks ``config.data_dir``'s metadata.

    Raises:
      DataMismatchError: the data has other features than ``config.features``.
      FileNotFoundError: no metadata in ``config.data_dir``.
      ValueError: the train split is empty.
    """
    metadata = read_metadata(config.data_dir)
    feature_set = check_compatible(metadata, features.get_feature_set(config.features), config.data_dir)
    data = TrainingData(feature_set, Normalizer.from_metadata(metadata), metadata.blocks(features.TRAIN),
                        metadata.blocks(features.VALIDATION))
    if data.train_blocks == 0:
        raise ValueError(f"{config.data_dir}: the train split is empty")
    for split in (features.TRAIN, features.VALIDATION):
        check_split_counts(config.data_dir, split, metadata.blocks(split), metadata.raw.get("blocks_read_back"))
    return data


def check_split_counts(data_dir: str, split: str, claimed: int, read_back: dict | None) -> None:
    """Refuses metadata whose block count is not what the split's shards hold.

    Epochs, schedules and validation steps are all sized from this count: a
    ``metadata.json`` that claims 10x the blocks would train on data repeated
    every epoch without a word. The shards' records are counted from their
    headers (a seek per record), and the job's own read-back count must agree.

    Raises:
      DataMismatchError: naming the file, the split and both counts.
    """
    path = os.path.join(data_dir, features.METADATA_FILENAME)
    if read_back is not None and int(read_back.get(split, 0)) != claimed:
        raise DataMismatchError(f"{path} claims {claimed:,} {split} blocks but its own read-back count is "
                                f"{int(read_back.get(split, 0)):,}: the file was edited or mixed with another run's; "
                                "re-run beam_jobs.preprocess")
    if claimed == 0:
        return
    held = 0
    for shard in inputs.list_shards(data_dir, split):
        with tf.io.gfile.GFile(shard, "rb") as f:
            try:
                held += tfrecords.count_framed_records(f, shard)
            except tfrecords.CorruptRecordError as e:
                raise inputs.ShardError(f"corrupt TFRecord shard: {e}") from None
    if held != claimed:
        raise DataMismatchError(f"{path} claims {claimed:,} {split} blocks but the {split} shards hold {held:,} "
                                "records: the file was edited or the shards changed; re-run beam_jobs.preprocess")


def input_config(config: TrainConfig, split: str, training: bool, drop_remainder: bool) -> inputs.InputConfig:
    """How one split is read for training (repeated; shuffled and augmented when ``training``)."""
    return inputs.InputConfig(
        data_dir=config.data_dir, split=split, batch_size=config.batch_size, is_training=training,
        repeat=True, seed=config.seed, read=config.input, drop_remainder=drop_remainder,
        augment=config.augment if training else None,
        with_clean=training and config.ina_consistency > 0,  # the consistency term's unaugmented blocks
    )


def make_datasets(config: TrainConfig, strategy: tf.distribute.Strategy, data: TrainingData) -> Datasets:
    """One input pipeline per worker (``distribute_datasets_from_function``) for train and validation.

    Raises:
      FileNotFoundError: a split with blocks has no shards.
    """
    steps_per_epoch = max(1, math.ceil(data.train_blocks / config.batch_size))
    validation_steps = math.ceil(data.validation_blocks / config.batch_size)
    drop_remainder = is_tpu(strategy)  # static shapes on TPU

    def distribute(split: str, training: bool) -> tf.distribute.DistributedDataset:
        split_config = input_config(config, split, training, drop_remainder)
        return strategy.distribute_datasets_from_function(
            lambda ctx: inputs.make_dataset(split_config, data.feature_set, data.normalizer, ctx))

    train = distribute(features.TRAIN, True)
    files = inputs.list_shards(config.data_dir, features.TRAIN)
    validation = None
    if validation_steps:
        validation = distribute(features.VALIDATION, False)
        files += inputs.list_shards(config.data_dir, features.VALIDATION)
    return Datasets(train, validation, steps_per_epoch, validation_steps, files)
