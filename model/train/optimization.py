"""Compiling a run's model: the learning-rate schedule, the optimizer, the loss and the metrics."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from model.train import consistency, ina, models, warm_start
from model.train.config import TrainConfig
from pipeline import features


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from 0 to ``learning_rate``, then cosine decay to 0 or constant.

    Keras' ``CosineDecay`` with ``warmup_target``: the rate is 0 at step 0 and
    reaches the peak at step ``warmup_steps``; the decay runs over the
    remaining steps (at least 1). ``alpha=1`` makes the decay a constant.
    """
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    total_steps = config.epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(total_steps - warmup_steps, 1),
        alpha=0.0 if config.lr_schedule == "cosine" else 1.0,
        warmup_target=config.learning_rate, warmup_steps=warmup_steps)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule."""
    schedule = make_schedule(config, steps_per_epoch)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)


def build_for_training(config: TrainConfig, block_shape: tuple[int, int]) -> keras.Model:
    """``config.model`` as ``fit`` trains it: the fusion's cnn branch warm-started or fixed as configured, and
    wrapped in a ``ConsistencyTrainer`` with ``--ina_consistency`` (whose ``block_model`` is the fusion)."""
    cnn_branch = warm_start.cnn_from_export(config.cnn_branch_from) if config.cnn_branch_from else None
    if cnn_branch is not None and not config.cnn_branch_trainable:
        cnn_branch.trainable = False
    model = models.build_model(config.model, block_shape, config.ina_wheel, config.ina_trainable_layers,
                               cnn_branch=cnn_branch)
    if config.ina_consistency:
        teacher = ina.patch_classifier(ina.load_ina_cnn(config.ina_wheel), ina.PATCH_FRAMES,
                                       features.INA_MEL.num_bins, name="ina_teacher")
        model = consistency.ConsistencyTrainer(model, teacher, config.ina_consistency)
    return model


def compile_model(config: TrainConfig, strategy: tf.distribute.Strategy, block_shape: tuple[int, int],
                  steps_per_epoch: int) -> keras.Model:
    """Builds ``config.model`` in ``strategy``'s scope, at ``config.mixed_precision``, and compiles it.

    Loss: binary cross-entropy on p(female) (plus the consistency term with
    ``--ina_consistency``); metrics: accuracy and ROC AUC.
    """
    keras.mixed_precision.set_global_policy(config.mixed_precision)
    with strategy.scope():
        model = build_for_training(config, block_shape)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
            steps_per_execution=config.steps_per_execution,
        )
    return model
