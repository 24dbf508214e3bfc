"""Keras callbacks: the run's list, learning-rate logging, a history file that survives restarts, NaN stop."""

from __future__ import annotations

import json
import math
import os

import tensorflow as tf
import tf_keras as keras


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` to the epoch logs (TensorBoard, history) .

    Must come before the TensorBoard callback in the callback list.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = self.model.optimizer
        lr = optimizer.learning_rate
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            lr = lr(optimizer.iterations)
        logs["learning_rate"] = float(tf.convert_to_tensor(lr))


class HistoryFile(keras.callbacks.Callback):
    """Keeps ``history.json`` (one entry per epoch) across kill-and-resume.

    Keras' own History only holds the epochs of the current process; after a
    resume this file still lists every epoch, each written once.

    Args:
      path: the JSON file.
      fresh: start a new file (a run that does not resume).
      on_epoch: called with the whole history after each epoch (e.g. a plot).
    """

    def __init__(self, path: str, fresh: bool, on_epoch=None):
        super().__init__()
        self.path = path
        self.on_epoch = on_epoch
        self.epochs: list[dict] = []
        if not fresh and tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                self.epochs = json.load(f)["epochs"]

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch + 1] + [entry]
        tmp = self.path + ".tmp"
        with tf.io.gfile.GFile(tmp, "w") as f:
            json.dump({"epochs": self.epochs}, f, indent=1)
        tf.io.gfile.rename(tmp, self.path, overwrite=True)
        if self.on_epoch is not None:
            self.on_epoch(self.as_columns())

    def as_columns(self) -> dict[str, list[float]]:
        """metric -> values per epoch, like ``History.history``."""
        names = [k for k in (self.epochs[-1] if self.epochs else {}) if k != "epoch"]
        return {k: [e.get(k, float("nan")) for e in self.epochs] for k in names}


def backup_exists(backup_dir: str) -> bool:
    """Whether a BackupAndRestore checkpoint is there to resume from."""
    # BackupAndRestore reads (and the chief writes) <backup_dir>/chief/.
    return tf.io.gfile.exists(os.path.join(backup_dir, "chief", "checkpoint"))


class StopOnNonFiniteLoss(keras.callbacks.TerminateOnNaN):
    """Keras' ``TerminateOnNaN`` that remembers where the loss went non-finite.

    Keras only stops ``fit``; the caller checks ``stopped_at`` and fails the
    run instead of saving or exporting a broken model.
    """

    def __init__(self):
        super().__init__()
        self.stopped_at: tuple[int, int, float] | None = None  # (epoch, batch, loss), 1-based epoch
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_batch_end(self, batch, logs=None):
        # Every batch log, not the loss alone: a term trained on may be logged beside it (the consistency's).
        for value in (logs or {}).values():
            if not math.isfinite(float(value)):
                if self.stopped_at is None:
                    self.stopped_at = (self._epoch, batch, float(value))
                self.model.stop_training = True
        super().on_batch_end(batch, logs)


def make_callbacks(
    *,
    backup_dir: str,
    checkpoint_pattern: str,
    log_dir: str,
    history_file: HistoryFile | None,
    backup_every_steps: int,
    early_stopping_patience: int,
) -> tuple[list[keras.callbacks.Callback], StopOnNonFiniteLoss]:
    """The run's callbacks, in the order they must run.

    Args:
      backup_dir: ``BackupAndRestore``'s directory (fault tolerance).
      checkpoint_pattern: ``ModelCheckpoint``'s path, with ``{epoch}``.
      log_dir: TensorBoard logs.
      history_file: the chief's ``HistoryFile``; None on other workers.
      backup_every_steps: backup frequency in steps; 0: every epoch.
      early_stopping_patience: epochs without validation-loss improvement; 0: off
        (pass 0 when there is no validation data).

    Returns:
      The list for ``fit`` and the non-finite-loss stopper in it.
    """
    nan_stop = StopOnNonFiniteLoss()
    callbacks: list[keras.callbacks.Callback] = [
        nan_stop,  # first: a NaN batch stops before anything else sees it
        keras.callbacks.BackupAndRestore(backup_dir, save_freq=backup_every_steps or "epoch"),
        keras.callbacks.ModelCheckpoint(checkpoint_pattern, save_weights_only=True),
        LearningRateLogger(),  # before TensorBoard, which logs what it adds
        keras.callbacks.TensorBoard(log_dir, update_freq="epoch"),
    ]
    if early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=early_stopping_patience,
                                                       restore_best_weights=True))
    if history_file is not None:
        callbacks.append(history_file)
    return callbacks, nan_stop

