"""Typed training configuration: each setting declared once, here; ``model.train`` derives its flags from it."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Literal

from absl import flags

from model.train import models
from pipeline import config_flags
from pipeline import features as features_lib
from pipeline.augment import AugmentConfig
from pipeline.inputs import ReadOptions

Strategy = Literal["auto", "cpu", "mirrored", "multi_worker", "tpu"]
Optimizer = Literal["adam", "adamw", "sgd"]
LrSchedule = Literal["constant", "cosine"]
Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
STRATEGIES: tuple[str, ...] = typing.get_args(Strategy)
OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)
LR_SCHEDULES: tuple[str, ...] = typing.get_args(LrSchedule)
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
# AugmentConfig's (lowest, highest) ranges: checked here, so flags and code get the same check.
_AUGMENT_RANGES = ("noise_snr_db", "lowpass_hz")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; library code reads nothing else.

    ``model.train`` has one flag per attribute (``pipeline.config_flags``), the
    augmentation's own attributes flattened (``--gain_db``, not
    ``--augment.gain_db``), with this docstring as their help.

    Attributes:
      data_dir: output of ``beam_jobs.preprocess`` (local or gs://).
      model_dir: checkpoints, TensorBoard logs, history, plots and ``export/``
        go here.
      model: model architecture, a name in the ``model.train.models`` registry,
        or ``cnn_ina_fusion`` (``cnn`` fused with inaSpeechSegmenter's gender CNN,
        on ``--features=log_mel_ina`` data; needs ``--ina_wheel``).
      features: feature set the model expects; data written with other
        features is refused.
      ina_wheel: ``cnn_ina_fusion`` only: the inaSpeechSegmenter 0.6.8 wheel
        (``pip download --no-deps inaSpeechSegmenter==0.6.8``), whose gender
        CNN's weights start ina's branch.
      ina_trainable_layers: ``cnn_ina_fusion`` only: fine-tune the last N of
        ina's layers with weights (0: ina frozen; 19: all; its dense head is
        the last 9), with the run's learning rate.
      ina_consistency: ``cnn_ina_fusion`` only: weight of the consistency term
        (``model.train.consistency``): ina's branch on each augmented and
        unaugmented training block pulled toward the wheel's own CNN on the
        unaugmented block (KL divergence), so fine-tuning keeps ina's answers
        and learns the augmentations; 0 disables it. Needs
        ``--ina_trainable_layers`` > 0.
      cnn_branch_from: ``cnn_ina_fusion`` only: start the cnn branch from this
        export of a ``cnn`` on log_mel (e.g. ``model/pretrained``), its weights
        read by name; the data's log_mel statistics must be those in the
        export's ``training_data_metadata.json`` (the same corpora and flags).
        Empty: a new cnn, trained from scratch.
      cnn_branch_trainable: ``cnn_ina_fusion`` only: train the cnn branch
        (``--nocnn_branch_trainable``: fixed, e.g. the shipped cnn as it is).
      epochs: passes over the training split.
      batch_size: global batch size (split across replicas).
      optimizer: ``adam``, ``adamw`` or ``sgd`` (with momentum 0.9).
      learning_rate: peak learning rate.
      lr_schedule: ``constant`` or ``cosine`` (decay to 0 over all steps).
      warmup_epochs: linear warm-up before the schedule (may be fractional).
      weight_decay: decoupled weight decay (``adamw`` only).
      augment: training-time augmentation (gain, SpecAugment masks and the
        spectrum changes below); None (``--noaugment``) disables it.
      strategy: ``auto``, ``cpu``, ``mirrored``, ``multi_worker`` or ``tpu``.
      tpu: TPU name or grpc:// address (``--strategy=tpu`` or ``auto``).
      mixed_precision: ``float32``, ``mixed_float16`` (GPU) or ``mixed_bfloat16`` (TPU, recent CPUs).
      seed: seeds weights, shuffles and augmentation.
      steps_per_execution: train steps per ``tf.function`` call (fewer host round trips on TPU).
      early_stopping_patience: epochs without validation-loss improvement
        before stopping and restoring the best weights; 0 disables.
      input: how the records are read (``pipeline.inputs.ReadOptions``, its
        fields flattened: ``--shuffle_buffer``, ``--deterministic``, ``--cache``).
      backup_every_steps: fault-tolerance checkpoint every N steps (0: every epoch).
      export: write the serving SavedModel and its LiteRT twin at the end.
      calibrate: then fit p_female's calibration on the validation speakers
        (their audio, through the predictor: ``model.calibrate``) and write it
        into the export; ``--nocalibrate`` leaves the export uncalibrated.
    """

    data_dir: str
    model_dir: str
    model: str = dataclasses.field(default=models.DEFAULT_MODEL,
                                   metadata=config_flags.flag_options(
                                       choices=sorted([*models.MODELS, models.FUSION_MODEL])))
    features: str = dataclasses.field(default=features_lib.DEFAULT_FEATURE_SET,
                                      metadata=config_flags.flag_options(choices=sorted(features_lib.FEATURE_SETS)))
    ina_wheel: str = ""
    ina_trainable_layers: int = 0
    ina_consistency: float = 0.0
    cnn_branch_from: str = ""
    cnn_branch_trainable: bool = True
    epochs: int = 20
    batch_size: int = 64
    optimizer: Optimizer = "adam"
    learning_rate: float = 1e-3
    lr_schedule: LrSchedule = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    augment: AugmentConfig | None = AugmentConfig()
    strategy: Strategy = "auto"
    tpu: str = ""
    mixed_precision: Precision = "float32"
    seed: int = 42
    steps_per_execution: int = 1
    early_stopping_patience: int = 0
    input: ReadOptions = ReadOptions()
    backup_every_steps: int = 0
    export: bool = True
    calibrate: bool = True

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
        if self.model == models.FUSION_MODEL and (not self.ina_wheel
                                                  or self.features != features_lib.LOG_MEL_INA.name):
            raise ValueError(f"--model={models.FUSION_MODEL} needs --features={features_lib.LOG_MEL_INA.name} and "
                             "--ina_wheel (pip download --no-deps inaSpeechSegmenter==0.6.8)")
        fusion_only = {"ina_trainable_layers": self.ina_trainable_layers != 0,
                       "ina_consistency": self.ina_consistency != 0, "cnn_branch_from": bool(self.cnn_branch_from),
                       "nocnn_branch_trainable": not self.cnn_branch_trainable}
        given = [name for name, set_ in fusion_only.items() if set_]
        if self.model != models.FUSION_MODEL and given:
            raise ValueError(f"--{given[0]} is for --model={models.FUSION_MODEL} only")
        if not math.isfinite(self.ina_consistency) or self.ina_consistency < 0:
            raise ValueError(f"ina_consistency must be finite and >= 0, got {self.ina_consistency}")
        if not self.cnn_branch_trainable and not self.cnn_branch_from:
            raise ValueError("--nocnn_branch_trainable fixes a trained cnn branch: give --cnn_branch_from")
        if self.ina_consistency and not self.ina_trainable_layers:
            raise ValueError("--ina_consistency trains ina's branch: give --ina_trainable_layers > 0")
        for name in _AUGMENT_RANGES if self.augment else ():
            low, high = getattr(self.augment, name)
            if low > high:
                raise ValueError(f"{name}: lowest {low} > highest {high}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_flagfile(path: str, **overrides: Any) -> TrainConfig:
    """The ``TrainConfig`` a training preset describes, as ``python -m model.train --flagfile=path`` builds it.

    Parses with a fresh ``flags.FlagValues()``, so the global FLAGS stay untouched.
    A preset's ``--flagfile=configs/...`` includes are relative to the working
    directory, as on the command line.

    Args:
      path: a flagfile of ``model.train`` flags (e.g. ``configs/cnn.flags``).
      **overrides: ``TrainConfig`` fields that win over the preset (``data_dir``, ``model_dir``,
        ``epochs``, ``augment``, ...).

    Returns:
      The config; ``data_dir``/``model_dir`` are None unless the preset or ``overrides`` set them.

    Raises:
      absl.flags.Error: the file is missing or names an unknown flag or a bad value.
      ValueError: the settings are inconsistent (see ``TrainConfig``).
    """
    flag_values = flags.FlagValues()
    config_flags.define_flags(TrainConfig, flag_values)
    flag_values(["config_from_flagfile", f"--flagfile={path}"])
    return config_flags.from_flags(TrainConfig, flag_values, **overrides)
