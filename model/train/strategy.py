"""tf.distribute strategy from its flag name, and who is chief."""

from __future__ import annotations

import os

import tensorflow as tf
from absl import logging


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """Creates the distribution strategy.

    Args:
      name: ``auto`` (TPU if ``tpu`` is set, all local GPUs if there are
        several, else the default strategy on the one GPU or the CPU),
        ``cpu`` (the default strategy with GPUs hidden), ``mirrored``
        (all local GPUs, or all logical CPUs), ``multi_worker`` (cluster from
        ``TF_CONFIG``) or ``tpu``.
      tpu: TPU name or grpc:// address; "" means the local TPU VM.

    Returns:
      The strategy; build the model inside its ``scope()``.

    Raises:
      ValueError: for an unknown name, or ``multi_worker`` without ``TF_CONFIG``.
    """
    if name == "auto":
        if tpu:
            name = "tpu"
        else:
            if len(tf.config.list_physical_devices("GPU")) > 1:
                name = "mirrored"
            else:
                # The default strategy (one GPU if there is one, else the CPU).
                # Not OneDeviceStrategy: BackupAndRestore does not support it.
                return tf.distribute.get_strategy()
    if name == "cpu":
        # Hide GPUs so the default strategy places everything on the CPU.
        tf.config.set_visible_devices([], "GPU")
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs TF_CONFIG describing the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        logging.info("TPU devices: %s", tf.config.list_logical_devices("TPU"))
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes model_dir (the only worker unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief" or task_type is None:
        return True
    has_chief = "chief" in resolver.cluster_spec().jobs
    return task_type == "worker" and task_id == 0 and not has_chief


def is_tpu(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.TPUStrategy)
