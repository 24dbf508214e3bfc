"""Consistency fine-tuning of the fusion's ina branch: the loss term, what trains, what stays."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from model.train import consistency, ina, models
from pipeline import features
from tests.helpers import stand_in_ina_cnn


def test_kl_divergence_is_the_formula_zero_for_equal_rows_and_finite_when_saturated():
    target = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    predicted = np.array([[0.6, 0.4], [0.5, 0.5]], np.float32)
    expected = np.mean(np.sum(target * np.log(target / predicted), axis=1))
    np.testing.assert_allclose(consistency.kl_divergence(target, predicted).numpy(), expected, rtol=1e-5)
    assert abs(float(consistency.kl_divergence(target, target))) < 1e-6
    saturated = consistency.kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert np.isfinite(saturated.numpy()) and saturated.numpy() > 10


def _sharp_stand_in(seed: int):
    """The stand-in with a steep output layer: its answers move with its input (a random one stays near 0.5)."""
    cnn = stand_in_ina_cnn(seed)
    kernel, bias = cnn.get_layer("ina_out").get_weights()
    cnn.get_layer("ina_out").set_weights([kernel * 50, bias])
    return cnn


def _trainer(student_seed: int = 0):
    keras.utils.set_random_seed(7)  # the cnn branch's weights too: two trainers built in turn are the same
    shape = features.LOG_MEL_INA.block_shape
    cnn_branch = models.cnn((shape[0], features.LOG_MEL.num_bins))
    cnn_branch.trainable = False
    fusion = models.cnn_ina_fusion(shape, _sharp_stand_in(student_seed), cnn_branch=cnn_branch, ina_trainable_layers=3)
    teacher = ina.patch_classifier(_sharp_stand_in(0), ina.PATCH_FRAMES, features.INA_MEL.num_bins, "ina_teacher")
    return consistency.ConsistencyTrainer(fusion, teacher, 1.0), fusion, teacher, cnn_branch


def _blocks(seed: int = 0, batch: int = 8):
    rng = np.random.default_rng(seed)
    clean = rng.normal(size=(batch, *features.LOG_MEL_INA.block_shape)).astype(np.float32)
    augmented = clean.copy()
    # A bright tilt and noise on ina's bins: what the augmentation does to its part.
    ina_part = augmented[..., features.LOG_MEL.num_bins:]
    ina_part += 3 * np.linspace(-1, 1, features.INA_MEL.num_bins) + 2 * rng.normal(size=ina_part.shape)
    labels = (np.arange(batch) % 2).astype(np.float32)
    return augmented, clean, labels


def test_the_term_reuses_the_fusions_own_pass_over_the_augmented_patches():
    trainer, fusion, *_ = _trainer(student_seed=1)
    augmented, clean, _ = _blocks()
    p_female, student_augmented = trainer.fusion_and_student(augmented, training=False)
    np.testing.assert_allclose(p_female.numpy(), fusion(augmented).numpy(), atol=1e-6)
    np.testing.assert_allclose(trainer.consistency(augmented, clean, student_augmented).numpy(),
                               trainer.consistency(augmented, clean).numpy(), rtol=1e-5)
    # The one-pass view shares the fusion's variables: nothing trains twice.
    ids = [id(v) for v in trainer.trainable_variables]
    assert len(ids) == len(set(ids)) == len(fusion.trainable_variables)


def test_the_student_starts_as_the_teacher_and_augmentation_makes_them_differ():
    trainer, *_ = _trainer()
    augmented, clean, _ = _blocks()
    assert abs(float(trainer.consistency(clean, clean))) < 1e-6  # same weights, same patches
    assert float(trainer.consistency(augmented, clean)) > 1e-4
    np.testing.assert_allclose(trainer(clean).numpy(), trainer.fusion(clean).numpy())
    assert trainer.built  # before fit: BackupAndRestore needs it
    assert consistency.block_model(trainer) is trainer.fusion and consistency.block_model(trainer.fusion) is trainer.fusion


def test_a_step_trains_inas_branch_only_and_reports_the_term():
    trainer, fusion, teacher, cnn_branch = _trainer()
    teacher_before, cnn_before = teacher.get_weights(), cnn_branch.get_weights()
    student_before = fusion.get_layer(models.INA_BRANCH_LAYER).get_weights()
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(),
                    metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    augmented, clean, labels = _blocks()
    data = tf.data.Dataset.from_tensors(((augmented, clean), labels))
    history = trainer.fit(data, epochs=1, verbose=0, validation_data=tf.data.Dataset.from_tensors((clean, labels)))
    assert {"loss", "accuracy", consistency.CONSISTENCY_METRIC, "val_loss"} <= set(history.history)
    assert history.history[consistency.CONSISTENCY_METRIC][0] > 0
    for before, after in ((teacher_before, teacher.get_weights()), (cnn_before, cnn_branch.get_weights())):
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
    student_after = fusion.get_layer(models.INA_BRANCH_LAYER).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(student_before, student_after, strict=True))


def test_the_term_alone_pulls_a_different_student_toward_the_teachers_answers():
    trainer, *_ = _trainer(student_seed=1)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), loss=lambda y, p: 0.0 * tf.reduce_sum(p))
    augmented, clean, labels = _blocks()
    before = float(trainer.consistency(augmented, clean))
    trainer.fit(tf.data.Dataset.from_tensors(((augmented, clean), labels)).repeat(30), epochs=1, verbose=0)
    assert float(trainer.consistency(augmented, clean)) < 0.25 * before  # measured: 0.44 -> ~0.01


def test_a_mixed_precision_step_is_finite_and_keeps_the_term_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        trainer, fusion, *_ = _trainer()
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy())
        assert isinstance(trainer.optimizer, keras.mixed_precision.LossScaleOptimizer)
        augmented, clean, labels = _blocks()
        history = trainer.fit(tf.data.Dataset.from_tensors(((augmented, clean), labels)), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0]) and np.isfinite(history.history[consistency.CONSISTENCY_METRIC][0])
        assert trainer.consistency(augmented, clean).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_non_finite_term_stops_the_run_like_a_non_finite_loss():
    from model.train import callbacks

    stop = callbacks.StopOnNonFiniteLoss()
    stop.set_model(keras.Sequential([keras.layers.Dense(1)]))
    stop.on_epoch_begin(0)
    stop.on_batch_end(0, {"loss": 0.3, consistency.CONSISTENCY_METRIC: 0.1})
    assert stop.stopped_at is None and not stop.model.stop_training
    stop.on_batch_end(1, {"loss": 0.3, consistency.CONSISTENCY_METRIC: float("nan")})
    assert stop.stopped_at[:2] == (1, 1) and stop.model.stop_training
