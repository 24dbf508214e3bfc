"""Consistency fine-tuning of the fusion's ina branch (``--ina_consistency``, issue 21).

Fine-tuning ina's CNN on labels alone gives back, on calm training speech, what
its broadcast training brought to raised voices (WORKSPACE, "Fine-tuning the
fusion"). Here its own answers are kept as a target instead: a frozen copy of
the wheel's CNN (the teacher) scores the patches of each *unaugmented*
training block, and the fusion's ina branch (the student) is pulled toward
those answers on the same block augmented and unaugmented. The loss is the
fusion's cross-entropy on the labels plus ``weight`` times the mean KL
divergence of the student's (female, male) softmax from the teacher's (the
logged ``loss`` is the cross-entropy, comparable with ``val_loss``; the term is
logged as ``consistency``, and a non-finite one stops the run too), so ina
learns the augmentations' invariance (the telephone band, noise) without being
taught to agree with calm data.

The trainer wraps the fusion only for ``fit``: evaluation, the final weights
and the export are the fusion's own (``block_model``).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from model.train import models

CONSISTENCY_METRIC = "consistency"


def kl_divergence(target: tf.Tensor, predicted: tf.Tensor, eps: float = 1e-7) -> tf.Tensor:
    """Mean over rows of KL(target || predicted) for softmax rows; float32, finite for saturated rows.

    The floor is added, not clipped to: a clip has no gradient below it, and a student confidently wrong on an
    augmented patch is the case the term is for.
    """
    target = tf.cast(target, tf.float32)
    predicted = tf.cast(predicted, tf.float32)
    return tf.reduce_mean(tf.reduce_sum(target * (tf.math.log(target + eps) - tf.math.log(predicted + eps)), axis=-1))


class ConsistencyTrainer(keras.Model):
    """``fit`` of a ``cnn_ina_fusion`` with the consistency term; batches are ``((augmented, clean), labels)``.

    Args:
      fusion: the model trained (``models.cnn_ina_fusion``).
      teacher: the wheel's CNN as a patch classifier (``ina.patch_classifier``), frozen here.
      weight: the consistency term's weight.
    """

    def __init__(self, fusion: keras.Model, teacher: keras.Model, weight: float, **kwargs):
        super().__init__(name="consistency_trainer", **kwargs)
        self.fusion = fusion
        self.teacher = teacher
        self.teacher.trainable = False
        self.weight = float(weight)
        self._patches = fusion.get_layer(models.INA_PATCHES_LAYER)
        self._student = fusion.get_layer(models.INA_BRANCH_LAYER)
        # The fusion and its ina branch's softmax on the augmented patches in one pass: the term reuses the
        # branch's answers instead of running ina on those patches a second time (same layers, same weights).
        # Its call inside the fusion is its one inbound node (``output`` would be its own graph's, disconnected).
        self.fusion_and_student = keras.Model(fusion.inputs, [fusion.output, self._student.get_output_at(0)])
        self.consistency_tracker = keras.metrics.Mean(name=CONSISTENCY_METRIC)
        self.build(fusion.input_shape)  # built before fit: BackupAndRestore restores only a built model

    def call(self, inputs, training=False):
        return self.fusion(inputs, training=training)

    def consistency(self, augmented: tf.Tensor, clean: tf.Tensor,
                    student_augmented: tf.Tensor | None = None) -> tf.Tensor:
        """The mean KL of the student on both blocks' patches from the teacher on the clean ones.

        The student runs in inference mode, as inside the fusion (``models.cnn_ina_fusion``).

        Args:
          augmented: the augmented blocks.
          clean: the same blocks unaugmented.
          student_augmented: the student's softmax on ``augmented``'s patches when already computed
            (``fusion_and_student``); else it is computed here.
        """
        clean_patches = self._patches(clean)
        target = tf.stop_gradient(self.teacher(clean_patches, training=False))
        if student_augmented is None:
            student_augmented = self._student(self._patches(augmented), training=False)
        student = tf.concat([student_augmented, self._student(clean_patches, training=False)], axis=0)
        return kl_divergence(tf.concat([target, target], axis=0), student)

    def train_step(self, data):
        (augmented, clean), labels = data
        with tf.GradientTape() as tape:
            p_female, student_augmented = self.fusion_and_student(augmented, training=True)
            label_loss = self.compute_loss(augmented, labels, p_female)
            consistency = self.consistency(augmented, clean, student_augmented)
            # compute_loss scales the labels' loss for the replicas; the extra term is scaled the same way.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = label_loss + self.weight * consistency / replicas
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        self.consistency_tracker.update_state(consistency)
        return self.compute_metrics(augmented, labels, p_female, sample_weight=None)

    def test_step(self, data):
        logs = super().test_step(data)
        logs.pop(CONSISTENCY_METRIC, None)  # only training batches have unaugmented twins to score it on
        return logs


def block_model(model: keras.Model) -> keras.Model:
    """The block classifier a run trains: the fusion inside a ``ConsistencyTrainer``, else the model itself."""
    return model.fusion if isinstance(model, ConsistencyTrainer) else model
