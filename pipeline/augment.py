"""Training-time augmentation of spectrogram blocks, vectorized over a batch.

All randomness is stateless and derived from an explicit seed, so a seeded
input pipeline is reproducible even with parallel maps.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from pipeline import features


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Switches and strengths of the augmentations.

    Attributes:
      gain_db: random gain drawn uniformly in [-gain_db, gain_db] per block
        (0 disables); applied to raw features, before normalization.
      time_masks: SpecAugment time masks per block.
      time_mask_fraction: the longest time mask as a fraction of the frames.
      freq_masks: SpecAugment frequency masks per block.
      freq_mask_fraction: the widest frequency mask as a fraction of the bins.
    """

    gain_db: float = 6.0
    time_masks: int = 2
    time_mask_fraction: float = 0.125
    freq_masks: int = 2
    freq_mask_fraction: float = 0.125


def random_gain(blocks: tf.Tensor, seed: tf.Tensor, max_db: float, feature_set: features.FeatureSet) -> tf.Tensor:
    """Scales each block's waveform by a random gain, in the feature domain.

    Args:
      blocks: raw (unnormalized) features [batch, frames, bins].
      seed: int32/int64 [2] stateless seed.
      max_db: gains are uniform in [-max_db, max_db].
      feature_set: decides how a gain shows in the features.

    Returns:
      Blocks of the same shape.
    """
    gain_db = tf.random.stateless_uniform(tf.shape(blocks)[:1], seed, -max_db, max_db)[:, None, None]
    if feature_set.kind == "log_mel":
        # log(g * mel + offset) ~= log(mel + offset) + log(g) wherever speech is
        # well above the offset, which is where the model looks.
        return blocks + gain_db * (math.log(10.0) / 20.0)
    return blocks * tf.pow(10.0, gain_db / 20.0)


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
