"""pipeline.frontend (numpy, the Beam job's) against pipeline.spectrogram (TensorFlow, the export's).

The two must give the same blocks and the same silence mask for every feature set, or the training
data would drift from what the serving graph computes.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from pipeline import features, frontend, spectrogram

FEATURE_SETS = [features.LOG_MEL, features.STFT_SEED, features.INA_MEL, features.LOG_MEL_INA,
                dataclasses.replace(features.INA_MEL, fft_float64=False)]
# In log units (log_mel, ina_mel) or magnitude (stft_seed, whose values reach ~100): float32 FFTs and
# float32 filterbanks differ in the last bits between pocketfft and TF's; quiet bands move most.
TOLERANCE = {features.FeatureKind.STFT_ABS_REAL: 2e-4}


def voice(seconds: float, rate: int, f0: float = 130.0, seed: int = 0) -> np.ndarray:
    """A harmonic voice with a vibrato, a syllable rhythm, a pause and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 25) if k * f0 < rate / 2)
    wave = 0.2 * wave * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.standard_normal(len(t))
    wave[int(0.35 * len(t)):int(0.7 * len(t))] *= 1e-3  # a pause the silence rule drops
    return wave.astype(np.float32)


@pytest.mark.parametrize("fs", FEATURE_SETS, ids=lambda f: f"{f.name}-float{64 if f.fft_float64 else 32}-fft")
@pytest.mark.parametrize("seconds", [0.2, 2.1, 4.6])
def test_blocks_and_voiced_mask_equal_the_tensorflow_front_ends(fs, seconds):
    wave = voice(seconds, fs.sample_rate)
    blocks, voiced = frontend.waveform_to_blocks(wave, fs)
    reference, reference_voiced = spectrogram.make_block_fn(fs)(tf.constant(wave))
    assert blocks.dtype == np.float32 and voiced.dtype == bool
    assert blocks.shape == tuple(reference.shape) == (int(spectrogram.num_blocks(len(wave), fs)), *fs.block_shape)
    np.testing.assert_array_equal(voiced, reference_voiced.numpy())
    tolerance = TOLERANCE.get(fs.kind, 1e-4)
    assert np.abs(blocks - reference.numpy()).max(initial=0.0) <= tolerance
    if seconds > 4:
        assert 0 < voiced.sum() < len(voiced)  # the pause is cut: the mask was really compared


@pytest.mark.parametrize("fs", [features.LOG_MEL, features.INA_MEL], ids=lambda f: f.name)
def test_block_counts_at_the_boundaries_and_any_input_layout(fs):
    """One sample short of a block, exactly one, one short of two, two; float64 and strided input."""
    wave = voice(3.0, fs.sample_rate)
    for length in (fs.min_clip_samples - 1, fs.min_clip_samples, fs.min_clip_samples + fs.block_samples - 1,
                   fs.min_clip_samples + fs.block_samples):
        clip = wave[:length]
        reference, _ = spectrogram.make_block_fn(fs)(tf.constant(clip))
        for given in (clip, clip.astype(np.float64), np.repeat(clip, 2)[::2]):
            blocks, voiced = frontend.waveform_to_blocks(given, fs)
            assert blocks.shape == tuple(reference.shape) and len(voiced) == len(blocks), length
            assert np.abs(blocks - reference.numpy()).max(initial=0.0) <= 1e-4
    assert [len(frontend.waveform_to_blocks(wave[:n], fs)[0]) for n in (
        fs.min_clip_samples - 1, fs.min_clip_samples, fs.min_clip_samples + fs.block_samples)] == [0, 1, 2]


def test_frames_equal_tensorflows_for_a_length_between_blocks():
    fs = features.LOG_MEL
    wave = voice(1.37, fs.sample_rate)
    frames = frontend.compute_features(wave, fs)
    reference = spectrogram.compute_features(tf.constant(wave), fs).numpy()
    assert frames.shape == reference.shape == (frontend.num_frames(len(wave), fs), 64)
    assert np.abs(frames - reference).max() <= 1e-4


def test_the_mel_matrix_is_tf_signals():
    fs = features.LOG_MEL
    reference = tf.signal.linear_to_mel_weight_matrix(
        fs.num_bins, fs.fft_length // 2 + 1, fs.sample_rate, fs.mel_lower_hz, fs.mel_upper_hz).numpy()
    np.testing.assert_allclose(frontend.mel_weight_matrix(fs), reference, atol=2e-5)
    assert not frontend.mel_weight_matrix(fs)[0].any()  # DC weighs nothing


@pytest.mark.parametrize("length", [1, 7, 400, 401])
@pytest.mark.parametrize("periodic", [True, False])
def test_hann_windows_are_tf_signals(length, periodic):
    np.testing.assert_allclose(frontend._hann(length, periodic, "float32"),
                               tf.signal.hann_window(length, periodic=periodic).numpy(), atol=1e-6)


def test_a_wrong_parameter_is_caught_by_the_comparison():
    """The comparison can fail: a 1% change of one parameter is far outside the tolerance."""
    fs = features.LOG_MEL
    wave = voice(2.0, fs.sample_rate)
    reference, _ = spectrogram.waveform_to_blocks(tf.constant(wave), fs)
    shifted, _ = frontend.waveform_to_blocks(wave, dataclasses.replace(fs, mel_upper_hz=7400.0))
    assert np.abs(shifted - reference.numpy()).max() > 0.01


def test_silent_and_too_short_clips():
    fs = features.LOG_MEL
    blocks, voiced = frontend.waveform_to_blocks(np.zeros(fs.min_clip_samples - 1, np.float32), fs)
    assert blocks.shape == (0, *fs.block_shape) and voiced.shape == (0,)
    blocks, voiced = frontend.waveform_to_blocks(np.zeros(3 * fs.sample_rate, np.float32), fs)
    assert not voiced.any() and np.isfinite(blocks).all()
    # The rule itself: below the floor, or 30 dB under the loudest block.
    np.testing.assert_array_equal(frontend.block_is_voiced(np.array([-10.0, -39.0, -41.0, -85.0])),
                                  [True, True, False, False])
    assert frontend.block_is_voiced(np.array([], np.float32)).shape == (0,)
