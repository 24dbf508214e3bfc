"""features.INA_MEL: inaSpeechSegmenter 0.6.8's front end in TF ops, against values the wheel computed.

``data/ina_mel_fixture.npz`` holds a generated 1.3 s voice and the log mel the
wheel's own feature function gave for it, written once by
``python -m benchmarks.ina_features --write_fixture=tests/pipeline/data/ina_mel_fixture.npz``
(the benchmark also compares real clips). The wheel itself is not needed here.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from pipeline import features, frontend, spectrogram

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "ina_mel_fixture.npz")
FS = features.INA_MEL


@pytest.fixture(scope="module")
def fixture():
    data = np.load(FIXTURE)
    return data["waveform_int16"].astype(np.float32) / 32768, data["ina_log_mel"]


def _compared(ina: np.ndarray) -> np.ndarray:
    # The benchmark's rule: bands of power under 1e-30 are digital silence (none in this voice).
    return np.isfinite(ina) & (ina >= np.log(1e-30))


def test_log_mel_equals_the_wheels_eagerly_and_traced(fixture):
    wave, ina = fixture
    assert ina.shape == ((len(wave) - 400) // 160 + 1, 24)  # frames without padding, 24 bands
    assert _compared(ina).mean() > 0.99
    eager = spectrogram.compute_features(tf.constant(wave), FS).numpy()
    traced = tf.function(lambda w: spectrogram.compute_features(w, FS))(tf.constant(wave)).numpy()
    for ours in (eager, traced):
        assert ours.shape == ina.shape
        diff = np.abs(ours - ina)[_compared(ina)]
        assert diff.max() <= 1e-3, diff.max()


def test_the_jobs_numpy_front_end_equals_the_wheels_too(fixture):
    wave, ina = fixture
    ours = frontend.compute_features(wave, FS)
    assert ours.shape == ina.shape and ours.dtype == np.float32
    assert np.abs(ours - ina)[_compared(ina)].max() <= 1e-3
    assert np.isfinite(frontend.compute_features(np.zeros(16000, np.float32), FS)).all()


def test_log_mel_inside_dataset_map_equals_eager(fixture):
    wave, _ = fixture
    eager = spectrogram.compute_features(tf.constant(wave), FS).numpy()
    mapped = next(iter(tf.data.Dataset.from_tensors(wave).map(lambda w: spectrogram.compute_features(w, FS))))
    np.testing.assert_allclose(mapped.numpy(), eager, atol=1e-5)


def test_the_pre_emphasis_window_and_filterbank_each_matter(fixture):
    """Each step of the recipe changes the answer by far more than the tolerance: the check can fail."""
    import dataclasses

    wave, ina = fixture
    no_emphasis = spectrogram.compute_features(tf.constant(wave), dataclasses.replace(FS, pre_emphasis=0.0)).numpy()
    assert np.abs(no_emphasis - ina)[_compared(ina)].max() > 0.1
    wider = spectrogram.compute_features(tf.constant(wave), dataclasses.replace(FS, mel_upper_hz=7500.0)).numpy()
    assert np.abs(wider - ina)[_compared(ina)].max() > 0.1


def test_filterbank_triangles_have_unit_area_and_skip_the_nyquist_bin():
    bank = frontend.ina_filterbank(FS)
    assert bank.shape == (257, 24) and bank.dtype == np.float32
    assert not bank[256].any() and not bank[:3].any()  # nothing at or below 100 Hz's bin, nor at Nyquist
    areas = bank.sum(axis=0) * FS.sample_rate / FS.fft_length  # a triangle's Hz-area, sampled every bin
    np.testing.assert_allclose(areas[6:], 1.0, rtol=0.1)  # wide triangles: close to 1 (narrow ones alias)
    assert (np.argmax(bank, axis=0)[1:] >= np.argmax(bank, axis=0)[:-1]).all()  # centres rise


def test_digital_silence_is_finite():
    silent = spectrogram.compute_features(tf.zeros(16000), FS).numpy()
    assert np.isfinite(silent).all() and silent.max() == pytest.approx(np.log(features.LOG_FLOOR), rel=1e-6)


def test_a_float32_fft_stays_close_to_the_wheels(fixture):
    import dataclasses

    wave, ina = fixture
    single = spectrogram.compute_features(tf.constant(wave), dataclasses.replace(FS, fft_float64=False)).numpy()
    diff = np.abs(single - ina)[_compared(ina)]
    assert np.median(diff) < 1e-3 and diff.max() < 0.1  # quiet bands move (benchmarks.ina_features: <= 0.037)
