"""Augmentation: what each op may and may not change, eagerly and in Dataset.map."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline import augment, features

SEED = tf.constant([1, 2], tf.int64)


def test_gain_is_exact_on_log_mel_magnitudes():
    offset = features.LOG_MEL.log_offset
    mel = np.random.default_rng(0).uniform(0.0, 5.0, size=(8, 96, 64)).astype(np.float32)
    blocks = tf.math.log(tf.constant(mel) + offset)
    out = augment.random_gain(blocks, SEED, 20.0, features.LOG_MEL).numpy()
    scaled = np.exp(out) - offset
    gain = scaled / np.maximum(mel, 1e-6)
    per_block = np.median(gain.reshape(8, -1), axis=1)
    # One gain per block, within +/- 20 dB, applied to the magnitudes (not added to the logs).
    np.testing.assert_allclose(scaled, per_block[:, None, None] * mel, rtol=2e-3, atol=2e-5)
    assert np.all((per_block >= 10 ** (-1) - 1e-4) & (per_block <= 10 + 1e-3)) and np.std(per_block) > 0
    # Loud cells shift by log(gain); cells near the offset floor shift less.
    assert np.allclose(out[mel > 1] - blocks.numpy()[mel > 1], np.log(np.broadcast_to(
        per_block[:, None, None], mel.shape)[mel > 1]), atol=1e-2)


def test_gain_scales_linear_stft_features():
    blocks = tf.ones([4, 100, 513])
    out = augment.random_gain(blocks, SEED, 6.0, features.STFT_SEED).numpy()
    ratio = out[:, 0, 0]
    assert np.all((ratio >= 10 ** (-6 / 20) - 1e-6) & (ratio <= 10 ** (6 / 20) + 1e-6))
    np.testing.assert_allclose(out, ratio[:, None, None] * np.ones_like(out), rtol=1e-6)


def test_spec_augment_masks_bands_to_zero_and_keeps_the_rest():
    config = augment.AugmentConfig(time_masks=2, time_mask_fraction=0.125, freq_masks=2, freq_mask_fraction=0.125)
    blocks = tf.random.uniform([16, 96, 64], 1.0, 2.0, seed=0)  # no natural zeros
    out = augment.spec_augment(blocks, SEED, config).numpy()
    kept = out != 0
    np.testing.assert_array_equal(out[kept], blocks.numpy()[kept])
    zero_frames = (~kept).all(axis=2).sum(axis=1)  # whole masked frames per block
    zero_bins = (~kept).all(axis=1).sum(axis=1)
    assert zero_frames.max() <= 2 * 12 and zero_bins.max() <= 2 * 8
    assert zero_frames.sum() > 0 and zero_bins.sum() > 0
    # Masked cells are whole frames or whole bins, nothing else.
    frame_masked = (~kept).all(axis=2)[:, :, None]
    bin_masked = (~kept).all(axis=1)[:, None, :]
    np.testing.assert_array_equal(~kept, frame_masked | bin_masked)


def test_spec_augment_is_seeded_and_same_in_dataset_map():
    config = augment.AugmentConfig()
    blocks = tf.random.normal([4, 96, 64], seed=1)
    eager = augment.spec_augment(blocks, SEED, config)
    again = augment.spec_augment(blocks, SEED, config)
    other = augment.spec_augment(blocks, SEED + 1, config)
    mapped = next(iter(tf.data.Dataset.from_tensors(blocks).map(lambda b: augment.spec_augment(b, SEED, config))))
    np.testing.assert_array_equal(eager, again)
    np.testing.assert_array_equal(eager, mapped)
    assert not np.array_equal(eager, other)


def _log_mel(mel):
    return tf.math.log(tf.constant(mel, tf.float32) + features.LOG_MEL.log_offset)


def test_lowpass_removes_energy_above_the_cutoff_only():
    config = augment.AugmentConfig(lowpass_prob=1.0, lowpass_hz=(3000.0, 3000.0))
    out = augment.spectral_changes(_log_mel(np.full((3, 96, 64), 2.0)), SEED, config, features.LOG_MEL).numpy()
    above = augment.bin_frequencies(features.LOG_MEL) > 3000.0
    np.testing.assert_allclose(out[:, :, above], np.log(features.LOG_MEL.log_offset), atol=1e-5)
    np.testing.assert_allclose(out[:, :, ~above], np.log(2.0 + features.LOG_MEL.log_offset), atol=1e-5)


def test_tilt_is_linear_across_bins_in_db():
    config = augment.AugmentConfig(tilt_db=10.0)
    out = augment.spectral_changes(_log_mel(np.full((4, 96, 64), 3.0)), SEED, config, features.LOG_MEL).numpy()
    db = 20 * np.log10(np.exp(out[:, 0, :]) - features.LOG_MEL.log_offset) - 20 * np.log10(3.0)
    slope = db[:, -1] - db[:, 0]
    assert np.all(np.abs(slope) <= 10.0 + 1e-3) and np.std(slope) > 0
    np.testing.assert_allclose(db[:, 32] - db[:, 31], slope / 63, atol=1e-3)  # linear in the bin position


def test_noise_raises_quiet_cells_and_respects_the_snr_range():
    config = augment.AugmentConfig(noise_prob=1.0, noise_snr_db=(10.0, 10.0))
    mel = np.zeros((2, 96, 64), np.float32)
    mel[:, :, 10] = 64.0  # one loud band; mean magnitude 1.0
    out = augment.spectral_changes(_log_mel(mel), SEED, config, features.LOG_MEL).numpy()
    added = np.exp(out[:, :, 20]) - features.LOG_MEL.log_offset
    # Noise level = mean magnitude * 10^(-10/20) = 0.316, times a 0.5-1.5 spread per cell.
    assert np.all((added >= 0.5 * 0.316 - 1e-3) & (added <= 1.5 * 0.316 + 1e-3))
    none = augment.spectral_changes(_log_mel(mel), SEED, augment.AugmentConfig(noise_prob=0.0, tilt_db=1e-9),
                                    features.LOG_MEL).numpy()
    np.testing.assert_allclose(none, _log_mel(mel).numpy(), atol=1e-4)


def test_spectral_changes_work_inside_dataset_map_for_both_feature_sets():
    config = augment.AugmentConfig(tilt_db=6.0, noise_prob=0.5, lowpass_prob=0.5)
    for fs in (features.LOG_MEL, features.STFT_SEED):
        blocks = tf.random.uniform([2, *fs.block_shape], 0.1, 1.0, seed=3)
        eager = augment.spectral_changes(blocks, SEED, config, fs)
        mapped = next(iter(tf.data.Dataset.from_tensors(blocks).map(
            lambda b, fs=fs: augment.spectral_changes(b, SEED, config, fs))))
        np.testing.assert_allclose(eager, mapped, rtol=1e-6)
        assert eager.shape == blocks.shape and np.isfinite(eager).all()


def test_frequency_warp_moves_energy_to_scaled_frequencies():
    for fs in (features.LOG_MEL, features.STFT_SEED):
        freqs = augment.bin_frequencies(fs)
        k = fs.num_bins // 3
        linear = np.zeros((3, 4, fs.num_bins), np.float32)
        linear[:, :, k] = 1.0
        out = augment.warp_frequencies(tf.constant(linear), tf.constant([1.0, 1.25, 0.8]), fs).numpy()
        np.testing.assert_allclose(out[0], linear[0], atol=1e-5)  # factor 1 changes nothing
        for row, factor in ((1, 1.25), (2, 0.8)):
            centre = np.sum(out[row, 0] * freqs) / np.sum(out[row, 0])
            assert abs(centre - freqs[k] * factor) < 0.05 * freqs[k] * factor, (fs.name, factor, centre)


def test_log_mel_bin_frequencies_are_the_peaks_of_tf_signals_mel_filters():
    fs = features.LOG_MEL
    # A fine linear grid (1 Hz steps) so each triangular filter peaks at its centre frequency.
    grid = fs.sample_rate // 2 + 1
    matrix = tf.signal.linear_to_mel_weight_matrix(fs.num_bins, grid, fs.sample_rate, fs.mel_lower_hz,
                                                   fs.mel_upper_hz).numpy()
    peaks_hz = np.argmax(matrix, axis=0) * (fs.sample_rate / 2) / (grid - 1)
    np.testing.assert_allclose(augment.bin_frequencies(fs), peaks_hz, atol=1.0)


def test_augment_batch_is_the_training_order_and_seeded():
    fs = features.LOG_MEL
    config = augment.AugmentConfig(tilt_db=3.0)
    blocks = _log_mel(np.random.default_rng(2).uniform(0.1, 4.0, (4, 96, 64)))
    seed = augment.batch_seed(5, tf.constant(3, tf.int64), 2, 1)
    assert seed.numpy().tolist() == [5, 7]  # batch 3 of pipeline 1 of 2
    out = augment.augment_batch(blocks, seed, config, fs, lambda b: b - 1.0)
    gain_seed, mask_seed, spectrum_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    expected = augment.spectral_changes(blocks, spectrum_seed, config, fs)
    expected = augment.random_gain(expected, gain_seed, config.gain_db, fs)
    expected = augment.spec_augment(expected - 1.0, mask_seed, config)
    np.testing.assert_array_equal(out, expected)
    other = augment.augment_batch(blocks, augment.batch_seed(5, tf.constant(3, tf.int64), 2, 0), config, fs,
                                  lambda b: b - 1.0)
    assert not np.array_equal(out, other)


def test_a_fused_sets_parts_are_changed_each_in_its_units_and_only_log_mel_is_masked():
    fs = features.LOG_MEL_INA
    config = augment.AugmentConfig(tilt_db=3.0, time_masks=2, freq_masks=2)
    rng = np.random.default_rng(3)
    log_mel = _log_mel(rng.uniform(0.1, 4.0, (4, 96, 64)))
    ina = tf.constant(rng.uniform(-5.0, 10.0, (4, 96, 24)), tf.float32)
    seed = augment.batch_seed(5, tf.constant(3, tf.int64), 2, 1)
    out = augment.augment_batch(tf.concat([log_mel, ina], axis=-1), seed, config, fs, lambda b: b - 1.0).numpy()
    np.testing.assert_array_equal(out[..., :64],
                                  augment.augment_batch(log_mel, seed, config, fs.parts[0], lambda b: b - 1.0))
    gain_seed, _, spectrum_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    ina_part = augment.random_gain(augment.spectral_changes(ina, spectrum_seed, config, fs.parts[1]), gain_seed,
                                   config.gain_db, fs.parts[1])
    np.testing.assert_array_equal(out[..., 64:], ina_part - 1.0)  # normalized, never masked


def test_a_gain_is_the_same_in_decibels_for_magnitude_and_power_features():
    """log_mel is a log magnitude, ina_mel a log power: +6 dB adds ln(10^0.3) to one, ln(10^0.6) to the other."""
    blocks = tf.fill([1, 96, 88], 2.0)
    config = augment.AugmentConfig(gain_db=6.0)
    for part, per_db in zip(features.LOG_MEL_INA.parts, (1 / 20, 1 / 10), strict=True):
        part_blocks = blocks[..., : part.num_bins]
        gained = augment.random_gain(part_blocks, SEED, config.gain_db, part).numpy()
        gain_db = tf.random.stateless_uniform([1], SEED, -6.0, 6.0).numpy()[0]
        expected = np.log(np.maximum(np.exp(2.0) - part.log_offset, 0) * 10 ** (gain_db * per_db) + part.log_offset)
        np.testing.assert_allclose(gained, expected, rtol=1e-5)


@pytest.mark.parametrize("feature_set", [features.LOG_MEL, features.INA_MEL], ids=lambda fs: fs.name)
def test_white_noise_added_to_white_noise_keeps_its_spectrum_and_flat_noise_does_not(feature_set):
    from pipeline import frontend

    noise = np.random.default_rng(1).normal(scale=0.1, size=2 * feature_set.sample_rate).astype(np.float32)
    blocks = frontend.compute_features(noise, feature_set)[None, :96]
    linear_before = augment.magnitudes(tf.constant(blocks), feature_set).numpy().mean(axis=(0, 1))
    ratios = {}
    for color in augment.NOISE_COLORS:
        config = augment.AugmentConfig(noise_prob=1.0, noise_snr_db=(0.0, 0.0), noise_color=color)
        changed = augment.spectral_changes(tf.constant(blocks), tf.constant([1, 2], tf.int64), config, feature_set)
        ratio = augment.magnitudes(changed, feature_set).numpy().mean(axis=(0, 1)) / linear_before
        ratios[color] = ratio.max() / ratio.min()
    assert ratios["white"] < 1.3 < 3.0 < ratios["flat"], ratios
    shape = augment.white_noise_shape(feature_set)
    assert shape.shape == (feature_set.num_bins,) and abs(float(shape.mean()) - 1.0) < 1e-5


def _bank_offset(block: np.ndarray, bank: np.ndarray) -> int:
    """Where in the bank a block of its cells (over their mean) starts; -1 when it is no such block."""
    frames = len(block)
    for start in range(len(bank) - frames + 1):
        crop = bank[start:start + frames]
        if np.allclose(block, crop / crop.mean(), rtol=1e-3, atol=1e-4):
            return start
    return -1


@pytest.mark.parametrize("feature_set", [features.LOG_MEL, features.INA_MEL, features.STFT_SEED],
                         ids=lambda fs: fs.name)
def test_colored_noise_slopes_from_white_to_brown(feature_set):
    cells = augment.colored_noise(tf.constant([64]), 96, tf.constant([3, 4], tf.int64), feature_set).numpy()
    assert cells.shape == (64, 96, feature_set.num_bins) and np.all(np.isfinite(cells)) and np.all(cells >= 0)
    np.testing.assert_allclose(cells.mean(axis=(1, 2)), 1.0, rtol=1e-4)
    # Each block's slope against the bank's (white) spectrum, fitted over octaves: within brown..white.
    bank = augment.noise_bank(feature_set).mean(axis=0)
    octaves = augment.octaves_above_lowest(feature_set)
    assert octaves.min() == 0.0 and np.all(np.diff(octaves) >= 0)  # an STFT's DC bin sits at its first bin
    slopes = [np.polyfit(octaves, 20 * np.log10(block.mean(axis=0) / bank), 1)[0] for block in cells]
    low, high = augment.COLORED_NOISE_SLOPE_DB_PER_OCTAVE
    assert low - 0.5 < min(slopes) < low + 1.5 and high - 1.5 < max(slopes) < high + 0.5, (min(slopes), max(slopes))


def test_colored_noise_cuts_each_block_from_the_bank_at_a_seeded_offset(monkeypatch):
    monkeypatch.setattr(augment, "COLORED_NOISE_SLOPE_DB_PER_OCTAVE", (0.0, 0.0))  # white: the bank's own cells
    seed = tf.constant([3, 4], tf.int64)
    cells = augment.colored_noise(tf.constant([4]), 96, seed, features.INA_MEL).numpy()
    np.testing.assert_array_equal(cells, augment.colored_noise(tf.constant([4]), 96, seed, features.INA_MEL).numpy())
    bank = augment.noise_bank(features.INA_MEL)
    offsets = [_bank_offset(block, bank) for block in cells]
    assert min(offsets) >= 0 and len(set(offsets)) == 4, offsets
    with pytest.raises(ValueError, match="longer than the noise bank"):
        augment.colored_noise(tf.constant([1]), len(bank) + 1, seed, features.INA_MEL)


def test_colored_noise_adds_in_power_at_the_asked_level(monkeypatch):
    # A constant block of magnitude c at 0 dB: the floor's mean magnitude is c, and out^2 = c^2 + noise^2 cell by
    # cell, so sqrt(out^2 - c^2) / c is a crop of the bank (over its mean). A magnitude sum would leave
    # sqrt(noise^2 + 2 c noise) there, which is none.
    monkeypatch.setattr(augment, "COLORED_NOISE_SLOPE_DB_PER_OCTAVE", (0.0, 0.0))
    feature_set, c = features.INA_MEL, 2.0
    raw = augment._from_linear(tf.fill([2, 96, feature_set.num_bins], c), feature_set)
    config = augment.AugmentConfig(noise_prob=1.0, noise_snr_db=(0.0, 0.0), noise_color="colored")
    out = augment.magnitudes(augment.spectral_changes(raw, tf.constant([5, 6], tf.int64), config, feature_set),
                             feature_set).numpy().astype(np.float64)
    noise = np.sqrt(np.maximum(out ** 2 - c ** 2, 0.0)) / c
    bank = augment.noise_bank(feature_set)
    assert all(_bank_offset(block, bank) >= 0 for block in noise)
