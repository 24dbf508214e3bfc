"""Training: strategy, input, model, callbacks, fit, then evaluation and export.

``train(config)`` is all a main needs to call. Nothing here reads flags.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

import tensorflow as tf
import tf_keras as keras
from absl import logging

from model import callbacks as callbacks_lib
from model import evaluation, export, loading, models, plots
from model.config import TrainConfig
from model.strategy import is_chief, is_tpu, make_strategy
from pipeline import features, inputs
from pipeline.metadata import Normalizer, check_compatible, read_metadata, split_blocks

BACKUP_DIRNAME = "backup"
CHECKPOINT_DIRNAME = "checkpoints"
LOG_DIRNAME = "logs"
HISTORY_FILENAME = "history.json"
CURVES_FILENAME = "training_curves.png"
CONFIG_FILENAME = loading.CONFIG_FILENAME
FLAGS_FILENAME = "flags.txt"
WEIGHTS_FILENAME = loading.WEIGHTS_FILENAME
VALIDATION_FILENAME = "validation.json"


@dataclasses.dataclass
class TrainResult:
    """What a run produced (on the chief; other workers get ``history`` only)."""

    history: dict[str, list[float]]
    resumed: bool
    replicas: int
    model: keras.Model
    validation: dict | None = None
    export_dir: str | None = None


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then constant or cosine decay to 0."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, decay: str):
        super().__init__()
        self.peak, self.warmup_steps, self.total_steps, self.decay = peak, warmup_steps, total_steps, decay

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(self.warmup_steps, tf.float32)
        total = tf.cast(max(self.total_steps, 1), tf.float32)
        warm = self.peak * tf.minimum(1.0, (step + 1.0) / tf.maximum(warmup, 1.0))
        if self.decay == "cosine":
            progress = tf.clip_by_value((step - warmup) / tf.maximum(total - warmup, 1.0), 0.0, 1.0)
            after = 0.5 * self.peak * (1.0 + tf.cos(math.pi * progress))
        else:
            after = tf.constant(self.peak, tf.float32)
        return tf.where(step < warmup, warm, after)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "decay": self.decay}


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule."""
    schedule = WarmupSchedule(config.learning_rate, int(config.warmup_epochs * steps_per_epoch),
                              config.epochs * steps_per_epoch, config.lr_schedule)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)


def _input_config(config: TrainConfig, split: str, training: bool, drop_remainder: bool) -> inputs.InputConfig:
    return inputs.InputConfig(
        data_dir=config.data_dir, split=split, batch_size=config.batch_size, is_training=training,
        repeat=True, shuffle_buffer=config.shuffle_buffer, seed=config.seed, deterministic=config.deterministic,
        cache=config.cache, drop_remainder=drop_remainder, augment=config.augment if training else None,
    )


def _write_text(path: str, text: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)


def float32_copy(weights: list, config: TrainConfig, block_shape: tuple[int, int]) -> keras.Model:
    """A float32, strategy-free model with trained ``weights`` (for evaluation and export)."""
    keras.mixed_precision.set_global_policy("float32")
    copy = models.build_model(config.model, block_shape)
    copy.set_weights(weights)
    return copy


def train(config: TrainConfig, flags_text: str = "") -> TrainResult:
    """Trains ``config.model`` on ``config.data_dir``; resumes an interrupted run.

    Args:
      config: the run's settings.
      flags_text: the flags as given, saved to ``flags.txt`` for the record.

    Returns:
      History, whether the run resumed, and on the chief the validation
      accuracy and the export path.

    Raises:
      DataMismatchError: the data has other features than ``config.features``.
      FileNotFoundError: no metadata or no shards in ``config.data_dir``.
    """
    keras.utils.set_random_seed(config.seed)
    metadata = read_metadata(config.data_dir)
    feature_set = check_compatible(metadata, features.get_feature_set(config.features), config.data_dir)
    normalizer = Normalizer.from_metadata(metadata)
    train_blocks = split_blocks(metadata, features.TRAIN)
    val_blocks = split_blocks(metadata, features.VALIDATION)
    if train_blocks == 0:
        raise ValueError(f"{config.data_dir}: the train split is empty")

    strategy = make_strategy(config.strategy, config.tpu)
    chief = is_chief(strategy)
    steps_per_epoch = max(1, math.ceil(train_blocks / config.batch_size))
    val_steps = math.ceil(val_blocks / config.batch_size)
    drop_remainder = is_tpu(strategy)
    logging.info("strategy %s with %d replicas; %d train blocks, %d steps per epoch",
                 type(strategy).__name__, strategy.num_replicas_in_sync, train_blocks, steps_per_epoch)

    train_ds = strategy.distribute_datasets_from_function(
        lambda ctx: inputs.make_dataset(_input_config(config, features.TRAIN, True, drop_remainder),
                                        feature_set, normalizer, ctx))
    val_ds = None
    if val_steps:
        val_ds = strategy.distribute_datasets_from_function(
            lambda ctx: inputs.make_dataset(_input_config(config, features.VALIDATION, False, drop_remainder),
                                            feature_set, normalizer, ctx))

    keras.mixed_precision.set_global_policy(config.mixed_precision)
    with strategy.scope():
        model = models.build_model(config.model, feature_set.block_shape)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
            steps_per_execution=config.steps_per_execution,
        )

    tf.io.gfile.makedirs(config.model_dir)
    backup_dir = os.path.join(config.model_dir, BACKUP_DIRNAME)
    resumed = callbacks_lib.backup_exists(backup_dir)
    if chief:
        _write_text(os.path.join(config.model_dir, CONFIG_FILENAME), json.dumps(config.to_dict(), indent=2))
        if flags_text:
            _write_text(os.path.join(config.model_dir, FLAGS_FILENAME), flags_text)
    if resumed:
        logging.info("resuming from the checkpoint in %s", backup_dir)
        print(f"Resuming from the checkpoint in {backup_dir}", flush=True)

    curves_path = os.path.join(config.model_dir, CURVES_FILENAME)
    history_file = callbacks_lib.HistoryFile(
        os.path.join(config.model_dir, HISTORY_FILENAME), fresh=not resumed,
        on_epoch=lambda h: plots.plot_history(h, curves_path, title=config.model))
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(backup_dir, save_freq=config.backup_every_steps or "epoch"),
        keras.callbacks.ModelCheckpoint(os.path.join(config.model_dir, CHECKPOINT_DIRNAME, "epoch-{epoch:03d}"),
                                        save_weights_only=True),
        callbacks_lib.LearningRateLogger(),
        keras.callbacks.TensorBoard(os.path.join(config.model_dir, LOG_DIRNAME), update_freq="epoch"),
    ]
    if config.early_stopping_patience > 0 and val_ds is not None:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=config.early_stopping_patience,
                                                       restore_best_weights=True))
    if chief:
        callbacks.append(history_file)

    # Progress bars on a terminal, one line per epoch in logs and CI.
    verbose = 1 if sys.stdout.isatty() else 2
    keras_history = model.fit(train_ds, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                              validation_data=val_ds, validation_steps=val_steps or None,
                              callbacks=callbacks, verbose=verbose)
    history = history_file.as_columns() if chief else keras_history.history
    result = TrainResult(history=history, resumed=resumed, replicas=strategy.num_replicas_in_sync, model=model)
    # Every worker must take part: reading synced variables is a collective.
    weights = model.get_weights()
    if not chief:
        return result

    final = float32_copy(weights, config, feature_set.block_shape)
    final.save_weights(os.path.join(config.model_dir, WEIGHTS_FILENAME))
    if val_blocks:
        predictions = evaluation.predict_split(final, config.data_dir, features.VALIDATION, feature_set, normalizer)
        result.validation = evaluation.accuracy_summary(predictions)
        _write_text(os.path.join(config.model_dir, VALIDATION_FILENAME), json.dumps(result.validation, indent=2))
        print("validation: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in result.validation.items()), flush=True)
    if config.export:
        result.export_dir = export.export_saved_model(
            final, feature_set, normalizer, os.path.join(config.model_dir, export.EXPORT_DIRNAME),
            extra_metadata={"model": config.model, "validation": result.validation})
        print(f"exported the serving SavedModel to {result.export_dir}", flush=True)
    return result
