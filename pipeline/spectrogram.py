"""Waveform to spectrogram blocks, in TensorFlow.

This is the reference feature implementation: the exported SavedModel calls it
in-graph on raw audio, so serving computes its own features. The Beam job's
workers compute the same features with ``pipeline.frontend`` (numpy, no
TensorFlow to import), which tests hold equal to this module. Every function
works eagerly, inside ``tf.function`` and inside ``tf.data.Dataset.map``.
"""

from __future__ import annotations

import tensorflow as tf

from pipeline import features, frontend


def compute_features(waveform: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """Computes frame-level features of a mono waveform.

    Args:
      waveform: float32 [samples] at ``feature_set.sample_rate``, in [-1, 1].
      feature_set: the spectrogram parameters.

    Returns:
      float32 [frames, feature_set.num_bins]; frames is 0 for clips shorter
      than one window.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if feature_set.kind is features.FeatureKind.LOG_MEL_INA:
        # Same frame length and hop, neither padded: the parts' frames are the same frames.
        return tf.concat([compute_features(waveform, part) for part in feature_set.parts], axis=1)
    if feature_set.kind is features.FeatureKind.INA_LOG_MEL:
        return _ina_log_mel(waveform, feature_set)
    stft = tf.signal.stft(
        waveform,
        frame_length=feature_set.frame_length,
        frame_step=feature_set.frame_step,
        fft_length=feature_set.fft_length,
    )
    if feature_set.kind is features.FeatureKind.STFT_ABS_REAL:
        # The seed article's quirk, kept on purpose: the absolute value of the
        # real part, not the magnitude |stft|.
        return tf.abs(tf.math.real(stft))
    if feature_set.kind is features.FeatureKind.LOG_MEL:
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=feature_set.num_bins,
            num_spectrogram_bins=feature_set.fft_length // 2 + 1,
            sample_rate=feature_set.sample_rate,
            lower_edge_hertz=feature_set.mel_lower_hz,
            upper_edge_hertz=feature_set.mel_upper_hz,
        )
        mel = tf.matmul(tf.abs(stft), mel_matrix)
        return tf.math.log(mel + feature_set.log_offset)
    raise ValueError(f"unknown feature kind {feature_set.kind!r}")


def _ina_log_mel(waveform: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """``INA_LOG_MEL`` frames: see ``features.INA_MEL``.

    Framing and pre-emphasis in float32, as the reference does them; window and FFT
    in float64 as the reference's numpy does (``fft_float64``; float32 moves
    bands far below their frame's peak, and is what LiteRT runs), the power
    cast back to float32 before the filterbank.
    """
    frames = tf.signal.frame(waveform, feature_set.frame_length, feature_set.frame_step, pad_end=False)
    previous = tf.concat([frames[:, :1], frames[:, :-1]], axis=1)
    emphasised = frames - previous * feature_set.pre_emphasis
    dtype = tf.float64 if feature_set.fft_float64 else tf.float32
    window = tf.signal.hann_window(feature_set.frame_length, periodic=False, dtype=dtype)
    spectrum = tf.signal.rfft(tf.cast(emphasised, dtype) * window, fft_length=[feature_set.fft_length])
    power = tf.cast(tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum)), tf.float32)
    mel = tf.matmul(power, tf.constant(frontend.ina_filterbank(feature_set)))
    return tf.math.log(tf.maximum(mel + feature_set.log_offset, features.LOG_FLOOR))


def num_blocks(num_samples: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """Whole blocks a clip of ``num_samples`` yields (int32 scalar, >= 0)."""
    num_samples = tf.cast(num_samples, tf.int32)
    frames = tf.maximum(
        0, (num_samples - feature_set.frame_length) // feature_set.frame_step + 1
    )
    return frames // feature_set.block_frames


def block_rms_db(waveform: tf.Tensor, count: tf.Tensor, feature_set: features.FeatureSet) -> tf.Tensor:
    """RMS level in dBFS of the waveform under each of the first ``count`` blocks."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    spans = tf.signal.frame(
        waveform, feature_set.block_samples, feature_set.block_samples, pad_end=True
    )[:count]
    power = tf.reduce_mean(tf.square(spans), axis=-1)
    return 10.0 * tf.math.log(power + 1e-12) / tf.math.log(10.0)


def block_is_voiced(rms_db: tf.Tensor) -> tf.Tensor:
    """The silence rule: True for blocks that carry speech.

    A block is silent when its RMS is below ``SILENCE_FLOOR_DBFS`` (digital
    silence, hiss) or more than ``SILENCE_RELATIVE_DB`` below the clip's loudest
    block (pauses and the lead-in/lead-out of a recording, whatever its gain).
    """
    loudest = tf.reduce_max(tf.concat([rms_db, [-1e9]], axis=0))
    return tf.logical_and(
        rms_db >= features.SILENCE_FLOOR_DBFS,
        rms_db >= loudest - features.SILENCE_RELATIVE_DB,
    )


def waveform_to_blocks(
    waveform: tf.Tensor, feature_set: features.FeatureSet
) -> tuple[tf.Tensor, tf.Tensor]:
    """Cuts a clip into consecutive, non-overlapping feature blocks.

    Args:
      waveform: float32 [samples] at ``feature_set.sample_rate``.
      feature_set: the spectrogram parameters.

    Returns:
      blocks: float32 [n, block_frames, num_bins], every whole block in order.
      voiced: bool [n], False for blocks the silence rule drops.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    frames = compute_features(waveform, feature_set)
    count = tf.shape(frames)[0] // feature_set.block_frames
    blocks = tf.reshape(
        frames[: count * feature_set.block_frames],
        [count, feature_set.block_frames, feature_set.num_bins],
    )
    voiced = block_is_voiced(block_rms_db(waveform, count, feature_set))
    return blocks, voiced


def make_block_fn(feature_set: features.FeatureSet):
    """A traced ``waveform_to_blocks`` for one feature set.

    One concrete function per feature set avoids retracing for every clip
    length, which matters when the Beam job calls it once per clip.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def block_fn(waveform):
        return waveform_to_blocks(waveform, feature_set)

    return block_fn


def make_concrete_block_fn(feature_set: features.FeatureSet):
    """The traced ``waveform_to_blocks`` as a concrete function taking a float32 tensor.

    Calling the concrete function skips the polymorphic argument binding of
    ``tf.function`` (measured in WORKSPACE.md), which a caller looping over
    clips (``benchmarks.frontend``; the Beam job before it dropped
    TensorFlow) pays once per clip.
    """
    concrete = make_block_fn(feature_set).get_concrete_function()
    return lambda waveform: concrete(tf.convert_to_tensor(waveform, tf.float32))
