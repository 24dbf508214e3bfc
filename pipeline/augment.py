"""Training-time augmentation of spectrogram blocks, vectorized over a batch.

All randomness is stateless and derived from an explicit seed, so a seeded
input pipeline is reproducible even with parallel maps.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable
from typing import Literal

import numpy as np
import tensorflow as tf
from tensorflow.python.ops.signal import mel_ops as _tf_mel

from pipeline import features, frontend

NoiseColor = Literal["flat", "white", "colored"]
NOISE_COLORS: tuple[str, ...] = typing.get_args(NoiseColor)
# ``colored`` noise's spectral slopes, dB per octave, relative to white noise: brown (-6) to white (0).
COLORED_NOISE_SLOPE_DB_PER_OCTAVE = (-6.0, 0.0)
# Seconds of Gaussian noise behind ``noise_bank``: about 3,000 frames at a 10 ms hop, each block a random span.
NOISE_BANK_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Switches and strengths of the augmentations.

    Attributes:
      gain_db: random gain drawn uniformly in [-gain_db, gain_db] per block
        (0 disables); applied exactly to raw features, before normalization.
      time_masks: SpecAugment time masks per block.
      time_mask_fraction: the longest time mask as a fraction of the frames.
      freq_masks: SpecAugment frequency masks per block.
      freq_mask_fraction: the widest frequency mask as a fraction of the bins.
      tilt_db: random spectral tilt, uniform in [-tilt_db, tilt_db] from the
        lowest to the highest bin (vocal effort, microphones); 0 disables.
      noise_prob: probability that a block gets additive noise.
      noise_snr_db: (lowest, highest) signal-to-noise ratio of that noise, dB,
        as the block's mean feature magnitude over the noise floor's: white
        noise at a waveform SNR of s dB is about s - 12 dB here (log_mel) and
        s - 13 dB (ina_mel), the median over speech blocks (quiet ones far
        lower), measured by ``benchmarks.noise_level``.
      noise_color: ``flat``: the same magnitude added to every bin; ``white``:
        shaped as white noise comes out of the front end (``white_noise_shape``:
        ina_mel's rises 30 dB from its lowest band to its highest, log_mel's 21);
        ``colored``: cells of a real noise spectrogram (``noise_bank``: Gaussian
        noise through the front end, so each cell fluctuates as noise does),
        tilted to a random slope from white to brown noise and added in power,
        as independent sounds add.
      lowpass_prob: probability that a block is band-limited (telephone
        lines, low-rate codecs): bins above a random cutoff lose their energy.
      lowpass_hz: (lowest, highest) cutoff frequency, Hz.
      freq_warp: frequency-axis scaling by a factor uniform in [1 - w, 1 + w]
        (shifts F0 harmonics and formants together, like a vocal-tract
        length change or a speed change); 0 disables.
    """

    gain_db: float = 6.0
    time_masks: int = 2
    time_mask_fraction: float = 0.125
    freq_masks: int = 2
    freq_mask_fraction: float = 0.125
    tilt_db: float = 0.0
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    noise_color: NoiseColor = "flat"
    lowpass_prob: float = 0.0
    lowpass_hz: tuple[float, float] = (3400.0, 7000.0)
    freq_warp: float = 0.0

    @property
    def changes_spectrum(self) -> bool:
        """Whether any of the linear-magnitude augmentations is on."""
        return self.tilt_db > 0 or self.noise_prob > 0 or self.lowpass_prob > 0 or self.freq_warp > 0


def random_gain(blocks: tf.Tensor, seed: tf.Tensor, max_db: float, feature_set: features.FeatureSet) -> tf.Tensor:
    """Scales each block's waveform by a random gain, exactly, in the feature domain.

    For log-mel, log(g * mel + offset) is computed from the stored
    log(mel + offset): a quiet recording's spectrum sinks into the offset
    floor and changes shape, which an additive shift would not teach.

    Args:
      blocks: raw (unnormalized) features [batch, frames, bins].
      seed: int32/int64 [2] stateless seed.
      max_db: gains are uniform in [-max_db, max_db].
      feature_set: decides how a gain shows in the features.

    Returns:
      Blocks of the same shape.
    """
    gain_db = tf.random.stateless_uniform(tf.shape(blocks)[:1], seed, -max_db, max_db)[:, None, None]
    return _from_linear(magnitudes(blocks, feature_set) * tf.pow(10.0, gain_db / 20.0), feature_set)


def _band_mask(size: int, batch: tf.Tensor, count: int, max_width: int, seed: tf.Tensor) -> tf.Tensor:
    """True where any of ``count`` random bands of width < ``max_width`` falls: [batch, size]."""
    positions = tf.range(size)[None, :]
    masked = tf.zeros([batch, size], tf.bool)
    for i in range(count):
        seed_w, seed_s = tf.unstack(tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, i), 2))
        width = tf.random.stateless_uniform([batch, 1], seed_w, 0, max_width + 1, dtype=tf.int32)
        start = tf.random.stateless_uniform([batch, 1], seed_s, 0, size, dtype=tf.int32)
        masked |= (positions >= start) & (positions < start + width)
    return masked


def spec_augment(blocks: tf.Tensor, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """SpecAugment time and frequency masking (Park et al., 2019).

    Masked cells are set to 0, the training mean of normalized features, so a
    mask removes information without adding an out-of-range value.

    Args:
      blocks: normalized features [batch, frames, bins].
      seed: [2] stateless seed.
      config: mask counts and widths.

    Returns:
      Blocks of the same shape.
    """
    batch = tf.shape(blocks)[0]
    frames, bins = blocks.shape[1], blocks.shape[2]
    seed_t, seed_f = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    time = _band_mask(frames, batch, config.time_masks, int(frames * config.time_mask_fraction), seed_t)
    freq = _band_mask(bins, batch, config.freq_masks, int(bins * config.freq_mask_fraction), seed_f)
    keep = ~(time[:, :, None] | freq[:, None, :])
    return tf.where(keep, blocks, tf.zeros_like(blocks))


# The mel scale tf.signal.linear_to_mel_weight_matrix uses (mel = Q ln(1 + f / break)),
# taken from tf.signal itself so the bin frequencies here cannot drift from the features'.
_MEL_Q = _tf_mel._MEL_HIGH_FREQUENCY_Q
_MEL_BREAK_HZ = _tf_mel._MEL_BREAK_FREQUENCY_HERTZ


def _mel_centres(feature_set: features.FeatureSet) -> tuple[float, float]:
    """(mel of the lowest bin's lower edge, mel distance between neighbouring bins)."""
    low = _MEL_Q * math.log1p(feature_set.mel_lower_hz / _MEL_BREAK_HZ)
    high = _MEL_Q * math.log1p(feature_set.mel_upper_hz / _MEL_BREAK_HZ)
    return low, (high - low) / (feature_set.num_bins + 1)


def bin_frequencies(feature_set: features.FeatureSet) -> np.ndarray:
    """Centre frequency (Hz) of each feature bin: mel-spaced for log_mel, linear for STFT bins."""
    if feature_set.is_log_mel:
        low, step = _mel_centres(feature_set)
        mels = low + step * np.arange(1, feature_set.num_bins + 1)
        return _MEL_BREAK_HZ * np.expm1(mels / _MEL_Q)
    return np.arange(feature_set.num_bins) * feature_set.sample_rate / feature_set.fft_length


def _bin_position(freq_hz: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """Fractional bin index of a frequency (the inverse of ``bin_frequencies``)."""
    if feature_set.is_log_mel:
        low, step = _mel_centres(feature_set)
        mel = _MEL_Q * tf.math.log1p(tf.maximum(freq_hz, 0.0) / _MEL_BREAK_HZ)
        return (mel - low) / step - 1.0
    return freq_hz * feature_set.fft_length / feature_set.sample_rate


def warp_frequencies(linear: tf.Tensor, factor: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """Moves every frequency f to f * factor (per block), by linear interpolation between bins.

    Args:
      linear: magnitudes [batch, frames, bins].
      factor: [batch] scale factors (> 1 moves energy up).
      feature_set: the bins' frequencies.
    """
    bins = feature_set.num_bins
    freqs = tf.constant(bin_frequencies(feature_set), tf.float32)
    source = _bin_position(freqs[None, :] / factor[:, None], feature_set)  # [batch, bins]
    source = tf.clip_by_value(source, 0.0, bins - 1.0)
    below = tf.cast(tf.floor(source), tf.int32)
    above = tf.minimum(below + 1, bins - 1)
    weight = (source - tf.cast(below, tf.float32))[:, None, :]
    low = tf.gather(linear, below, axis=2, batch_dims=1)
    high = tf.gather(linear, above, axis=2, batch_dims=1)
    return low * (1.0 - weight) + high * weight


def magnitudes(blocks: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """Raw features as magnitudes, the units every change here is made in (a gain of g dB multiplies by 10^(g/20))."""
    if feature_set.is_log_mel:
        linear = tf.maximum(tf.exp(blocks) - feature_set.log_offset, 0.0)
        # ina_mel is the log of band *power*: its magnitude is the square root.
        return tf.sqrt(linear) if feature_set.kind is features.FeatureKind.INA_LOG_MEL else linear
    return blocks


def _from_linear(linear: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    if feature_set.is_log_mel:
        if feature_set.kind is features.FeatureKind.INA_LOG_MEL:
            linear = tf.square(linear)
        return tf.math.log(tf.maximum(linear + feature_set.log_offset, features.LOG_FLOOR))
    return linear


@functools.cache
def white_noise_shape(feature_set: features.FeatureSet) -> np.ndarray:
    """Per bin, the mean magnitude (``magnitudes``'s units) of white noise's features, over its mean: float32 [bins].

    Measured, not derived: 4 s of seeded Gaussian noise through the front end the job runs (``frontend``), so
    pre-emphasis, window and filter shapes are all in it.
    """
    noise = np.random.default_rng(0).normal(scale=0.1, size=4 * feature_set.sample_rate).astype(np.float32)
    with tf.init_scope():  # eager even when first asked for while a tf.data map is traced
        linear = magnitudes(tf.constant(frontend.compute_features(noise, feature_set)), feature_set).numpy()
    linear = linear.mean(axis=0)
    return (linear / linear.mean()).astype(np.float32)


@functools.cache
def noise_bank(feature_set: features.FeatureSet) -> np.ndarray:
    """Magnitudes (``magnitudes``' units) of seeded Gaussian noise through the job's front end, over their mean.

    float32 [frames, bins]: ``NOISE_BANK_SECONDS`` of it, so blocks cut at random offsets hold different cells.
    """
    noise = np.random.default_rng(1).normal(scale=0.1, size=NOISE_BANK_SECONDS * feature_set.sample_rate)
    with tf.init_scope():  # eager even when first asked for while a tf.data map is traced
        linear = magnitudes(tf.constant(frontend.compute_features(noise.astype(np.float32), feature_set)),
                            feature_set).numpy()
    return (linear / linear.mean()).astype(np.float32)


def octaves_above_lowest(feature_set: features.FeatureSet) -> np.ndarray:
    """Each bin's centre in octaves above the lowest bin with a frequency above 0 Hz (an STFT's DC bin: 0)."""
    freqs = bin_frequencies(feature_set)
    lowest = freqs[freqs > 0].min()
    return np.log2(np.maximum(freqs, lowest) / lowest)


def colored_noise(batch: tf.Tensor, frames: int, seed: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """Per block, ``frames`` consecutive cells of ``noise_bank`` at a random offset and a random slope.

    Args:
      batch: [1] int32, the number of blocks.
      frames: frames per block.
      seed: [2] stateless seed.
      feature_set: the features' parameters.

    Returns:
      float32 [batch, frames, bins] magnitudes, each block's mean 1.

    Raises:
      ValueError: blocks longer than the bank.
    """
    bank = tf.constant(noise_bank(feature_set))
    if frames > bank.shape[0]:
        raise ValueError(f"colored noise: blocks of {frames} frames are longer than the noise bank's "
                         f"{bank.shape[0]} ({NOISE_BANK_SECONDS} s of {feature_set.name})")
    seed_offset, seed_slope = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    start = tf.random.stateless_uniform(batch, seed_offset, 0, bank.shape[0] - frames + 1, dtype=tf.int32)
    cells = tf.gather(bank, start[:, None] + tf.range(frames)[None, :])
    low, high = COLORED_NOISE_SLOPE_DB_PER_OCTAVE
    slope = tf.random.stateless_uniform(batch, seed_slope, low, high)
    octaves = tf.constant(octaves_above_lowest(feature_set), tf.float32)
    cells *= tf.pow(10.0, slope[:, None, None] * octaves[None, None, :] / 20.0)
    return cells / tf.reduce_mean(cells, axis=[1, 2], keepdims=True)


def spectral_changes(blocks: tf.Tensor, seed: tf.Tensor, config: AugmentConfig,
                     feature_set: features.FeatureSet) -> tf.Tensor:
    """Frequency warp, tilt, additive noise and band-limiting, on the linear magnitudes of raw features.

    The features are log(magnitude + offset) (log_mel) or magnitudes
    (stft_seed); each change is made where it is physical, on magnitudes, and
    the features are recomputed from them.

    Args:
      blocks: raw (unnormalized) features [batch, frames, bins].
      seed: [2] stateless seed.
      config: which changes, how strong.
      feature_set: the features' parameters (bin frequencies, log offset).

    Returns:
      Blocks of the same shape.
    """
    batch = tf.shape(blocks)[:1]
    bins = feature_set.num_bins
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 7))
    linear = magnitudes(blocks, feature_set)
    if config.freq_warp > 0:
        factor = tf.random.stateless_uniform(batch, seeds[6], 1.0 - config.freq_warp, 1.0 + config.freq_warp)
        linear = warp_frequencies(linear, factor, feature_set)
    position = tf.constant(np.linspace(-0.5, 0.5, bins), tf.float32)  # low bin -0.5 ... high bin +0.5
    if config.tilt_db > 0:
        tilt = tf.random.stateless_uniform(batch, seeds[0], -config.tilt_db, config.tilt_db)
        linear *= tf.pow(10.0, tilt[:, None, None] * position[None, None, :] / 20.0)
    if config.noise_prob > 0:
        lo, hi = config.noise_snr_db
        snr = tf.random.stateless_uniform(batch, seeds[1], lo, hi)
        on = tf.cast(tf.random.stateless_uniform(batch, seeds[2]) < config.noise_prob, tf.float32)
        level = tf.reduce_mean(linear, axis=[1, 2]) * tf.pow(10.0, -snr / 20.0) * on
        if config.noise_color == "colored":
            noise = level[:, None, None] * colored_noise(batch, blocks.shape[1], seeds[3], feature_set)
            # Independent sounds add in power, not in magnitude.
            linear = tf.sqrt(tf.square(linear) + tf.square(noise))
        else:
            # A stationary noise floor with a uniform cell-to-cell spread.
            spread = tf.random.stateless_uniform(tf.shape(linear), seeds[3], 0.5, 1.5)
            if config.noise_color == "white":
                spread *= tf.constant(white_noise_shape(feature_set), tf.float32)
            linear += level[:, None, None] * spread
    if config.lowpass_prob > 0:
        lo, hi = config.lowpass_hz
        cutoff = tf.random.stateless_uniform(batch, seeds[4], lo, hi)
        on = tf.random.stateless_uniform(batch, seeds[5]) < config.lowpass_prob
        freqs = tf.constant(bin_frequencies(feature_set), tf.float32)
        keep = tf.logical_or(~on[:, None], freqs[None, :] <= cutoff[:, None])
        linear *= tf.cast(keep, tf.float32)[:, None, :]
    return _from_linear(linear, feature_set)


def batch_seed(seed: int, batch_index: tf.Tensor, num_pipelines: int = 1, pipeline_id: int = 0) -> tf.Tensor:
    """The stateless seed of one training batch: int64 [2].

    Every input pipeline numbers its batches from 0, so the pipeline id is
    folded in: pipeline p's batch i gets ``(seed, i * num_pipelines + p)``, a
    different seed for every batch of every pipeline.

    Args:
      seed: the run's seed.
      batch_index: int64 scalar, this pipeline's batch counter.
      num_pipelines: input pipelines (``InputContext.num_input_pipelines``).
      pipeline_id: this pipeline's id.
    """
    return tf.stack([tf.cast(seed, tf.int64), batch_index * num_pipelines + pipeline_id])


def augment_batch(blocks: tf.Tensor, seed: tf.Tensor, config: AugmentConfig, feature_set: features.FeatureSet,
                  normalize: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """Augments and normalizes one batch of raw blocks: the training input's augmentation, in its order.

    Spectrum changes and gain act on the raw features (where they are
    physical), then the blocks are normalized and masked (the masks' 0 is the
    normalized mean).

    Args:
      blocks: raw (unnormalized) features [batch, frames, bins].
      seed: [2] stateless seed (``batch_seed``); the same seed gives the same batch.
      config: which augmentations, how strong.
      feature_set: the features' parameters.
      normalize: raw features -> normalized features (the training statistics).

    Returns:
      Normalized, augmented blocks of the same shape.
    """
    seed_gain, seed_mask, seed_spectrum = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    parts = feature_set.parts
    # A fused set's parts are changed each in its own units, with the same draws per block.
    pieces = tf.split(blocks, [part.num_bins for part in parts], axis=-1) if len(parts) > 1 else [blocks]
    for i, part in enumerate(parts):
        if config.changes_spectrum:
            pieces[i] = spectral_changes(pieces[i], seed_spectrum, config, part)
        if config.gain_db > 0:
            pieces[i] = random_gain(pieces[i], seed_gain, config.gain_db, part)
    normalized = normalize(tf.concat(pieces, axis=-1) if len(parts) > 1 else pieces[0])
    kept = feature_set.normalized_bins
    if kept == feature_set.num_bins:
        return spec_augment(normalized, seed_mask, config)
    if kept == 0:
        return normalized
    # Masks fill with the normalized mean: only the standardised bins have one (ina's CNN never saw masks).
    return tf.concat([spec_augment(normalized[..., :kept], seed_mask, config), normalized[..., kept:]], axis=-1)
