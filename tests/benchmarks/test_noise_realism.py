"""benchmarks.noise_realism: simulations at the real noise's level, and a run on a trained model."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import noise_realism
from pipeline import augment, features
from tests.benchmarks.smoke import assert_finite, run_benchmark
from tests.helpers import generated_voice


def test_each_simulation_adds_a_floor_as_strong_as_the_real_noise():
    fs = features.LOG_MEL_INA
    conditions = noise_realism.clip_conditions(generated_voice(False, 3.0, 2), fs, 10.0, np.random.default_rng(0), 0)
    clean = conditions["clean"]
    assert clean.shape[0] == 3 and set(conditions) == {"clean", "waveform_10db", *augment.NOISE_COLORS}
    assert all(c.shape == clean.shape and np.all(np.isfinite(c)) for c in conditions.values())
    start = 0
    for part in fs.parts:
        stop = start + part.num_bins

        def mag(raw, part=part, start=start, stop=stop):
            return augment.magnitudes(tf.constant(raw[..., start:stop]), part).numpy()

        # flat and white add in magnitude: what they added is the floor, whose mean is the real noise's own
        # (measured here on the real condition minus the clean one, which holds speech-noise cross terms too:
        # the same order, not equal).
        added = {color: (mag(conditions[color]) - mag(clean)).mean() for color in ("flat", "white")}
        real = (mag(conditions["waveform_10db"]) - mag(clean)).mean()
        assert added["flat"] == pytest.approx(added["white"], rel=0.05)
        assert 0.3 * added["flat"] < real < 3.0 * added["flat"], (part.name, added, real)
        start = stop


@pytest.mark.slow
def test_the_benchmark_scores_a_trained_run_under_real_and_simulated_noise(trained_run, log_mel_data):
    result = run_benchmark("noise_realism", f"--model_dir={trained_run}", f"--data_dir={log_mel_data}",
                           "--limit=12")
    assert result["clips"] > 0 and set(result["scores"]) == {"model"}  # a cnn has no branches
    cells = result["scores"]["model"]
    assert set(cells) == {"clean", "waveform_10db", *augment.NOISE_COLORS}
    for cell in cells.values():
        assert_finite(cell, ["balanced_accuracy", "women_mean_logit", "men_mean_logit"])
