"""Keras callbacks: learning-rate logging and a history file that survives restarts."""

from __future__ import annotations

import json
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
