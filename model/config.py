"""Typed training configuration, built once from flags by ``model.train``."""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.augment import AugmentConfig

STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; library code reads nothing else.

    Attributes:
      data_dir: output of ``beam_jobs.preprocess``.
      model_dir: checkpoints, logs, history, plots and ``export/`` go here.
      model: registry name in ``model.models``.
      features: feature set the model expects; data written with other
        features is refused.
      epochs: passes over the training split.
      batch_size: global batch size (split across replicas).
      optimizer: ``adam``, ``adamw`` or ``sgd`` (with momentum 0.9).
      learning_rate: peak learning rate.
      lr_schedule: ``constant`` or ``cosine`` (decay to 0 over all steps).
      warmup_epochs: linear warm-up before the schedule (may be fractional).
      weight_decay: decoupled weight decay (``adamw`` only).
      augment: training-time augmentation; None disables it.
      strategy: ``auto``, ``cpu``, ``mirrored``, ``multi_worker`` or ``tpu``.
      tpu: TPU name or grpc:// address (``tpu`` strategy).
      mixed_precision: ``float32``, ``mixed_float16`` (GPU) or ``mixed_bfloat16`` (TPU, recent CPUs).
      seed: seeds weights, shuffles and augmentation.
      steps_per_execution: train steps per ``tf.function`` call (fewer host round trips on TPU).
      early_stopping_patience: epochs without validation-loss improvement
        before stopping and restoring the best weights; 0 disables.
      shuffle_buffer: examples in the training shuffle buffer.
      deterministic: reproducible input order (slower).
      cache: keep decoded records in memory after the first epoch.
      backup_every_steps: fault-tolerance checkpoint every N steps (0: every epoch).
      export: write the serving SavedModel at the end.
    """

    data_dir: str
    model_dir: str
    model: str = "cnn"
    features: str = "log_mel"
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    augment: AugmentConfig | None = AugmentConfig()
    strategy: str = "auto"
    tpu: str = ""
    mixed_precision: str = "float32"
    seed: int = 42
    steps_per_execution: int = 1
    early_stopping_patience: int = 0
    shuffle_buffer: int = 10_000
    deterministic: bool = False
    cache: bool = False
    backup_every_steps: int = 0
    export: bool = True

    def __post_init__(self):
        for name, value, allowed in (
            ("strategy", self.strategy, STRATEGIES),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
            ("mixed_precision", self.mixed_precision, PRECISIONS),
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r}; choose one of {allowed}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
