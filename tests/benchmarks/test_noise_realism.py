"""benchmarks.noise_realism: simulations at the real noise's level, and a run on a trained model."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import noise_realism
from pipeline import augment, features
from tests.benchmarks.smoke import assert_finite, run_benchmark
from tests.helpers import generated_voice


def test_each_simulation_adds_a_floor_as_strong_as_the_real_noise():
    # At 30 dB the noise is far below the speech in these units (about +15 dB), so a level off by the sign of its
    # SNR would be off 30 dB, not within the factor 2 checked here.
    fs = features.LOG_MEL_INA
    conditions = noise_realism.clip_conditions(generated_voice(False, 3.0, 2), fs, 30.0, np.random.default_rng(0), 0)
    clean = conditions["clean"]
    assert clean.shape[0] == 3 and set(conditions) == {"clean", "waveform_30db", *augment.NOISE_COLORS}
    assert all(c.shape == clean.shape and np.all(np.isfinite(c)) for c in conditions.values())
    start = 0
    for part in fs.parts:
        stop = start + part.num_bins

        def mag(raw, part=part, start=start, stop=stop):
            return augment.magnitudes(tf.constant(raw[..., start:stop]), part).numpy().astype(np.float64)

        def added_in_power(raw):
            return np.sqrt(np.maximum(mag(raw) ** 2 - mag(clean) ** 2, 0.0)).mean()

        # flat and white add the floor's magnitude, colored its power: each way, the floor's mean comes back.
        floor = {color: (mag(conditions[color]) - mag(clean)).mean() for color in ("flat", "white")}
        floor["colored"] = added_in_power(conditions["colored"])
        real = added_in_power(conditions["waveform_30db"])  # real noise adds in power too (plus cross terms)
        assert floor["white"] == pytest.approx(floor["flat"], rel=0.05), (part.name, floor)
        assert floor["colored"] == pytest.approx(floor["flat"], rel=0.05), (part.name, floor)
        assert 0.5 * floor["flat"] < real < 2.0 * floor["flat"], (part.name, floor, real)
        start = stop


def test_a_fusion_is_scored_with_its_two_branches():
    import tf_keras as keras

    inputs = keras.Input((96, 88))
    pooled = keras.layers.GlobalAveragePooling1D()(inputs)
    cnn = keras.layers.Dense(1, name="cnn_logit")(pooled)
    ina = keras.layers.Dense(1, name="ina_logit")(pooled)
    p = keras.layers.Activation("sigmoid")(keras.layers.Average()([cnn, ina]))
    probe, names = noise_realism.logits_model(keras.Model(inputs, p))
    assert names == ["model", "cnn_logit", "ina_logit"]
    outputs = probe(np.zeros((2, 96, 88), np.float32))
    assert [tuple(o.shape) for o in outputs] == [(2, 1)] * 3


@pytest.mark.slow
def test_the_benchmark_scores_a_trained_run_under_real_and_simulated_noise(trained_run, log_mel_data):
    result = run_benchmark("noise_realism", f"--model_dir={trained_run}", f"--data_dir={log_mel_data}",
                           "--limit=12")
    assert result["clips"] > 0 and set(result["scores"]) == {"model"}  # a cnn has no branches
    cells = result["scores"]["model"]
    assert set(cells) == {"clean", "waveform_10db", *augment.NOISE_COLORS}
    for cell in cells.values():
        assert_finite(cell, ["balanced_accuracy", "women_mean_logit", "men_mean_logit"])
    # The model's p is read as a logit (p itself would be positive for everyone): the generated men's mean logit
    # is below zero and below the women's.
    assert cells["clean"]["men_mean_logit"] < min(0.0, cells["clean"]["women_mean_logit"])
