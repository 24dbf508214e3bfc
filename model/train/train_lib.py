"""Training: the run's steps along TF Model Garden's seams, and ``train(config)`` that runs them.

datasets (``model.train.datasets``) -> compile (``model.train.optimization``) ->
callbacks (``model.train.callbacks``) -> ``fit`` -> ``finish_on_chief`` (final
float32 weights). ``model.workflow.run`` carries a run on to its validation
summary, export and calibration. Nothing here reads flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import tensorflow as tf
import tf_keras as keras
from absl import logging

from model.train import callbacks as callbacks_lib
from model.train import consistency, curves, loading, models, optimization, warm_start
from model.train import datasets as datasets_lib
from model.train.config import TrainConfig
from model.train.strategy import is_chief, make_strategy
from pipeline import inputs

BACKUP_DIRNAME = "backup"
CHECKPOINT_DIRNAME = "checkpoints"
LOG_DIRNAME = "logs"
HISTORY_FILENAME = "history.json"
CURVES_FILENAME = "training_curves.png"
CONFIG_FILENAME = loading.CONFIG_FILENAME
FLAGS_FILENAME = "flags.txt"
WEIGHTS_FILENAME = loading.WEIGHTS_FILENAME
VALIDATION_FILENAME = "validation.json"


class NonFiniteLossError(ValueError):
    """The training loss became NaN or inf; nothing was saved or exported."""


@dataclasses.dataclass
class TrainResult:
    """What a run produced (on the chief; other workers get ``history`` only)."""

    history: dict[str, list[float]]
    resumed: bool
    replicas: int
    model: keras.Model
    chief: bool = True
    final_model: keras.Model | None = None  # the float32 copy whose weights were saved (chief only)
    data: datasets_lib.TrainingData | None = None
    validation: dict | None = None  # filled in by model.workflow
    export_dir: str | None = None  # filled in by model.workflow


def _write_text(path: str, text: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)


def float32_copy(weights: list, config: TrainConfig, block_shape: tuple[int, int]) -> keras.Model:
    """A float32, strategy-free model with trained ``weights`` (for evaluation and export)."""
    keras.mixed_precision.set_global_policy("float32")
    copy = models.build_model(config.model, block_shape, config.ina_wheel, config.ina_trainable_layers)
    copy.set_weights(weights)
    return copy


def write_run_files(config: TrainConfig, flags_text: str) -> None:
    """Writes ``config.json`` and (when given) ``flags.txt`` into the model directory (chief only)."""
    _write_text(os.path.join(config.model_dir, CONFIG_FILENAME), json.dumps(config.to_dict(), indent=2))
    if flags_text:
        _write_text(os.path.join(config.model_dir, FLAGS_FILENAME), flags_text)


def run_callbacks(config: TrainConfig, chief: bool, resumed: bool, has_validation: bool):
    """The callbacks of this run in ``config.model_dir``; the chief keeps ``history.json`` and its plot.

    Returns:
      (callbacks, the ``HistoryFile`` or None off the chief, the non-finite-loss stopper).
    """
    history_file = None
    if chief:
        curves_path = os.path.join(config.model_dir, CURVES_FILENAME)
        history_file = callbacks_lib.HistoryFile(
            os.path.join(config.model_dir, HISTORY_FILENAME), fresh=not resumed,
            on_epoch=lambda h: curves.plot_history(h, curves_path, title=config.model))
    callbacks, nan_stop = callbacks_lib.make_callbacks(
        backup_dir=os.path.join(config.model_dir, BACKUP_DIRNAME),
        checkpoint_pattern=os.path.join(config.model_dir, CHECKPOINT_DIRNAME, "epoch-{epoch:03d}"),
        log_dir=os.path.join(config.model_dir, LOG_DIRNAME), history_file=history_file,
        backup_every_steps=config.backup_every_steps,
        early_stopping_patience=config.early_stopping_patience if has_validation else 0)
    return callbacks, history_file, nan_stop


def fit(model: keras.Model, config: TrainConfig, data: datasets_lib.Datasets,
        callbacks: list[keras.callbacks.Callback], nan_stop: callbacks_lib.StopOnNonFiniteLoss) -> dict:
    """``model.fit`` with the input's and the loss's failures turned into clear errors.

    Returns:
      Keras' history of this process's epochs.

    Raises:
      inputs.ShardError: a corrupt shard or a non-finite block, naming the shard.
      NonFiniteLossError: the loss became NaN or inf (``TerminateOnNaN`` stopped the run).
    """
    # Progress bars on a terminal, one line per epoch in logs and CI.
    verbose = 1 if sys.stdout.isatty() else 2
    try:
        history = model.fit(data.train, epochs=config.epochs, steps_per_epoch=data.steps_per_epoch,
                            validation_data=data.validation, validation_steps=data.validation_steps or None,
                            callbacks=callbacks, verbose=verbose)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        error = inputs.shard_error(e, data.files)
        if error is None:
            raise
        raise error from None
    if nan_stop.stopped_at is not None:
        epoch, batch, loss = nan_stop.stopped_at
        raise NonFiniteLossError(
            f"training stopped: the loss became {loss} at epoch {epoch}, batch {batch}; no final weights and "
            "no export were written (try a lower --learning_rate, or --mixed_precision=float32)")
    return history.history


def finish_on_chief(result: TrainResult, weights: list, config: TrainConfig,
                    data: datasets_lib.TrainingData) -> TrainResult:
    """Writes the final float32 weights; returns ``result`` with the float32 model and the data's facts.

    Raises:
      ValueError: a weight is NaN or inf (checked before anything is written).
    """
    final = float32_copy(weights, config, data.feature_set.block_shape)
    loading.check_finite(final, data.normalizer)
    final.save_weights(os.path.join(config.model_dir, WEIGHTS_FILENAME))
    result.final_model, result.data = final, data
    return result


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
      ValueError: ``--cnn_branch_from`` is no cnn export, or its statistics are not the data's.
      inputs.ShardError: a corrupt shard or a non-finite block (names the shard).
      NonFiniteLossError: the loss became NaN or inf; nothing was exported.
    """
    keras.utils.set_random_seed(config.seed)
    data = datasets_lib.read_training_data(config)
    if config.cnn_branch_from:
        warm_start.check_statistics(config.cnn_branch_from, data.normalizer)
    strategy = make_strategy(config.strategy, config.tpu)
    chief = is_chief(strategy)
    datasets = datasets_lib.make_datasets(config, strategy, data)
    logging.info("strategy %s with %d replicas; %d train blocks, %d steps per epoch", type(strategy).__name__,
                 strategy.num_replicas_in_sync, data.train_blocks, datasets.steps_per_epoch)
    model = optimization.compile_model(config, strategy, data.feature_set.block_shape, datasets.steps_per_epoch)

    tf.io.gfile.makedirs(config.model_dir)
    backup_dir = os.path.join(config.model_dir, BACKUP_DIRNAME)
    resumed = callbacks_lib.backup_exists(backup_dir)
    if chief:
        write_run_files(config, flags_text)
    if resumed:
        logging.info("resuming from the checkpoint in %s", backup_dir)
        print(f"Resuming from the checkpoint in {backup_dir}", flush=True)  # the user's cue, on stdout
    callbacks, history_file, nan_stop = run_callbacks(config, chief, resumed, datasets.validation is not None)
    keras_history = fit(model, config, datasets, callbacks, nan_stop)

    history = history_file.as_columns() if chief else keras_history
    result = TrainResult(history=history, resumed=resumed, replicas=strategy.num_replicas_in_sync, model=model,
                         chief=chief)
    # Every worker must take part: reading synced variables is a collective.
    weights = consistency.block_model(model).get_weights()
    if not chief:
        return result
    return finish_on_chief(result, weights, config, data)
