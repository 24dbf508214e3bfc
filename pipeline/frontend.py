"""Waveform to spectrogram blocks in numpy: the Beam job's front end, without TensorFlow.

``pipeline.spectrogram`` is the reference: the exported SavedModel runs it in-graph on raw audio, so
serving computes its own features. This module computes the same frames, blocks and silence mask with
numpy for the preprocessing workers, which then never import TensorFlow (its import alone was 4.7 s of
CPU per worker, a third of a start-up run; WORKSPACE.md). ``tests/pipeline/test_frontend.py`` holds the
two equal for every feature set (1e-4 on generated voices, the voiced mask exactly), so the training
data and the serving graph cannot drift apart; on real clips the two float32 FFTs differ by up to
2.5e-3 in log_mel's quiet bins (``benchmarks.frontend``).

Every parameter comes from ``pipeline.features``; the filterbanks are the ones ``pipeline.spectrogram``
uses (``ina_filterbank`` lives here and is imported there; ``mel_weight_matrix`` equals
``tf.signal.linear_to_mel_weight_matrix`` to float32 rounding: TF builds it in float32, this in float64).
"""

from __future__ import annotations

import functools

import numpy as np

from pipeline import features


def num_frames(num_samples: int, feature_set: features.FeatureSet) -> int:
    """Whole frames of a clip: no padding, a partial last frame is dropped (as ``tf.signal.frame``)."""
    return max(0, (num_samples - feature_set.frame_length) // feature_set.frame_step + 1)


def _hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    # tf.signal's HTK mel scale: 1127 ln(1 + f / 700).
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


@functools.lru_cache(maxsize=8)
def mel_weight_matrix(feature_set: features.FeatureSet) -> np.ndarray:
    """``tf.signal.linear_to_mel_weight_matrix`` for a ``LOG_MEL`` set, float32 [fft_length // 2 + 1, num_bins].

    Triangles in mel over the linear bins' centres, peak 1, edges equally spaced in mel from
    ``mel_lower_hz`` to ``mel_upper_hz``; the DC bin weighs nothing.
    """
    spectrogram_bins = feature_set.fft_length // 2 + 1
    bin_mel = _hertz_to_mel(np.linspace(0.0, feature_set.sample_rate / 2.0, spectrogram_bins)[1:])[:, None]
    edges = np.linspace(_hertz_to_mel(feature_set.mel_lower_hz), _hertz_to_mel(feature_set.mel_upper_hz),
                        feature_set.num_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (centre - lower)
    falling = (upper - bin_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    matrix = np.vstack([np.zeros((1, feature_set.num_bins)), weights]).astype(np.float32)
    matrix.flags.writeable = False  # cached: shared by every caller
    return matrix


@functools.lru_cache(maxsize=8)
def ina_filterbank(feature_set: features.FeatureSet) -> np.ndarray:
    """The ina_mel filterbank, float32 [fft_length // 2 + 1, num_bins].

    ``num_bins`` triangles whose edges are equally spaced on the HTK mel scale
    from ``mel_lower_hz`` to ``mel_upper_hz``, each of area 1 (peak
    ``2 / (right - left)`` Hz). A triangle covers the FFT bins strictly above its
    left edge up to its centre, and above its centre strictly below the last
    bin at or under its right edge (that last bin is left out), so the
    Nyquist bin is never used.
    """
    n_fft, rate, count = feature_set.fft_length, feature_set.sample_rate, feature_set.num_bins

    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    # low + k * (high - low) / (count + 1): equal mel steps (linspace would round differently).
    mels = to_mel(feature_set.mel_lower_hz) + np.arange(count + 2) * (
        (to_mel(feature_set.mel_upper_hz) - to_mel(feature_set.mel_lower_hz)) / (count + 1))
    edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    bin_hz = np.arange(n_fft) / n_fft * rate
    bank = np.zeros((count, n_fft // 2 + 1), np.float32)
    for i, (left, centre, right) in enumerate(zip(edges[:-2], edges[1:-1], edges[2:], strict=True)):
        peak = 2.0 / (right - left)
        rising = np.arange(np.floor(left * n_fft / rate) + 1, np.floor(centre * n_fft / rate) + 1).astype(int)
        falling = np.arange(np.floor(centre * n_fft / rate) + 1,
                            min(np.floor(right * n_fft / rate) + 1, n_fft)).astype(int)[:-1]
        bank[i, rising] = peak / (centre - left) * (bin_hz[rising] - left)
        bank[i, falling] = peak / (right - centre) * (right - bin_hz[falling])
    bank.flags.writeable = False  # cached: shared by every caller
    return bank.T


@functools.lru_cache(maxsize=8)
def _hann(length: int, periodic: bool, dtype: str) -> np.ndarray:
    # tf.signal.hann_window: 0.5 - 0.5 cos(2 pi n / N), N = length for a periodic window of even length,
    # else length - 1; a window of one sample is 1.
    n = length if periodic and length % 2 == 0 else length - 1
    window = (np.ones(length) if length == 1 else 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / n)).astype(dtype)
    window.flags.writeable = False
    return window


def _frames(waveform: np.ndarray, feature_set: features.FeatureSet) -> np.ndarray:
    """[frames, frame_length], a strided view (nothing copied)."""
    count = num_frames(len(waveform), feature_set)
    return np.lib.stride_tricks.as_strided(
        waveform, shape=(count, feature_set.frame_length),
        strides=(waveform.strides[0] * feature_set.frame_step, waveform.strides[0]), writeable=False)


def _rfft(windowed: np.ndarray, fft_length: int) -> np.ndarray:
    # scipy's pocketfft in the input's precision, one thread (the job's workers share the cores):
    # ~10x numpy's rfft on [frames, 400] -> 512 points (0.3 against 3.4 ms for 4.5 s, one core; WORKSPACE.md).
    # Imported here: the TF-free predictor imports this module for the silence rule, and its base
    # install has no scipy.
    import scipy.fft

    return scipy.fft.rfft(windowed, n=fft_length, axis=-1, workers=1)


def compute_features(waveform: np.ndarray, feature_set: features.FeatureSet) -> np.ndarray:
    """Frame-level features of a mono waveform: ``spectrogram.compute_features`` in numpy.

    Args:
      waveform: float32 [samples] at ``feature_set.sample_rate``, in [-1, 1].
      feature_set: the spectrogram parameters.

    Returns:
      float32 [frames, feature_set.num_bins]; frames is 0 for clips shorter than one window.
    """
    waveform = np.ascontiguousarray(waveform, np.float32)
    if feature_set.kind is features.FeatureKind.LOG_MEL_INA:
        return np.concatenate([compute_features(waveform, part) for part in feature_set.parts], axis=1)
    frames = _frames(waveform, feature_set)
    if feature_set.kind is features.FeatureKind.INA_LOG_MEL:
        return _ina_log_mel(frames, feature_set)
    # tf.signal.stft: a periodic Hann window, the frame zero-padded to fft_length, float32 throughout.
    spectrum = _rfft(frames * _hann(feature_set.frame_length, True, "float32"), feature_set.fft_length)
    if feature_set.kind is features.FeatureKind.STFT_ABS_REAL:
        return np.abs(spectrum.real).astype(np.float32)  # the seed article's quirk, as in spectrogram
    if feature_set.kind is features.FeatureKind.LOG_MEL:
        mel = np.abs(spectrum).astype(np.float32) @ mel_weight_matrix(feature_set)
        return np.log(mel + np.float32(feature_set.log_offset))
    raise ValueError(f"unknown feature kind {feature_set.kind!r}")


def _ina_log_mel(frames: np.ndarray, feature_set: features.FeatureSet) -> np.ndarray:
    """``INA_LOG_MEL`` frames (see ``spectrogram._ina_log_mel``: the same steps in the same precisions).

    One difference is left: TensorFlow's matmul flushes subnormal products to zero and numpy keeps them,
    so a band of digital near-silence (power under ~1e-30, e.g. a frame of a 1e-16 waveform) can sit up
    to 1.1 above TensorFlow's value near log -86; louder bands agree to ~1e-5.
    """
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - frames[:, :-1] * np.float32(feature_set.pre_emphasis)
    emphasised[:, 0] = frames[:, 0] - frames[:, 0] * np.float32(feature_set.pre_emphasis)
    dtype = "float64" if feature_set.fft_float64 else "float32"
    spectrum = _rfft(emphasised.astype(dtype) * _hann(feature_set.frame_length, False, dtype), feature_set.fft_length)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    mel = power @ ina_filterbank(feature_set)
    return np.log(np.maximum(mel + np.float32(feature_set.log_offset), np.float32(features.LOG_FLOOR)))


def block_rms_db(waveform: np.ndarray, count: int, feature_set: features.FeatureSet) -> np.ndarray:
    """RMS level in dBFS of the waveform under each of the first ``count`` blocks (float32 [count])."""
    # Whole blocks always lie inside the waveform (their last frame ends past count block spans), so
    # tf's pad_end never pads one of them.
    spans = np.asarray(waveform, np.float32)[: count * feature_set.block_samples].reshape(
        count, feature_set.block_samples)
    power = np.einsum("ij,ij->i", spans, spans) / np.float32(feature_set.block_samples)
    return (10.0 * np.log10(power + 1e-12)).astype(np.float32)


def block_is_voiced(rms_db: np.ndarray) -> np.ndarray:
    """The silence rule (``spectrogram.block_is_voiced``): True for blocks that carry speech.

    A block is silent when its RMS is below ``SILENCE_FLOOR_DBFS`` (digital silence, hiss) or more than
    ``SILENCE_RELATIVE_DB`` below the clip's loudest block (pauses, lead-in and lead-out, whatever the gain).
    """
    loudest = rms_db.max(initial=-1e9)
    return (rms_db >= features.SILENCE_FLOOR_DBFS) & (rms_db >= loudest - features.SILENCE_RELATIVE_DB)


def waveform_to_blocks(waveform: np.ndarray, feature_set: features.FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Cuts a clip into consecutive, non-overlapping feature blocks (``spectrogram.waveform_to_blocks``).

    Returns:
      blocks: float32 [n, block_frames, num_bins], every whole block in order.
      voiced: bool [n], False for blocks the silence rule drops.
    """
    waveform = np.ascontiguousarray(waveform, np.float32)
    count = num_frames(len(waveform), feature_set) // feature_set.block_frames
    # Only the frames of whole blocks are computed: the tail frames would be dropped anyway.
    usable = (count * feature_set.block_frames - 1) * feature_set.frame_step + feature_set.frame_length
    frames = compute_features(waveform[:usable] if count else waveform[:0], feature_set)
    blocks = frames.reshape(count, feature_set.block_frames, feature_set.num_bins)
    return blocks, block_is_voiced(block_rms_db(waveform, count, feature_set))
