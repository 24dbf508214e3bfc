"""Named Keras model builders (functional ``tf_keras``), chosen by ``--model``.

Every builder takes the block shape ``(frames, bins)`` of normalized features
and returns a model with one sigmoid output: the probability that the voice is
female. The output layer is float32 so mixed-precision training stays stable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tf_keras as keras
from tf_keras import layers


def _female_probability(x):
    return layers.Dense(1, activation="sigmoid", dtype="float32", name="p_female")(x)


def seed_conv2d(block_shape: tuple[int, int]) -> keras.Model:
    """The seed article's first model: image resize, two 3x3 convs, max-pool, dense."""
    frames, bins = block_shape
    inputs = keras.Input(shape=block_shape, name="block")
    x = layers.Reshape((frames, bins, 1))(inputs)
    x = layers.Resizing(frames // 2, bins // 2)(x)
    x = layers.Conv2D(34, 3, activation="relu")(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _female_probability(x), name="seed_conv2d")


def seed_conv1d(block_shape: tuple[int, int]) -> keras.Model:
    """The seed article's "simplified model": batch norm, Conv1D over time, pools, dense."""
    inputs = keras.Input(shape=block_shape, name="block")
    x = layers.BatchNormalization()(inputs)
    x = layers.Conv1D(8, 3, activation="relu")(x)
    x = layers.MaxPooling1D()(x)
    x = layers.AveragePooling1D(pool_size=3, strides=3)(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, _female_probability(x), name="seed_conv1d")


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # Momentum 0.9 rather than Keras' 0.99: the moving statistics settle in
    # tens of steps, so short runs and small datasets evaluate correctly.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


# Cepstral coefficients (of 64 log-mel bins) the envelope model keeps: the harmonic ripple of a
# 100-400 Hz F0 repeats every ~3-8 mel bins at low frequencies, i.e. at DCT index >= ~16 of 64.
ENVELOPE_CEPSTRA = 16


def cepstral_lifter(bins: int, keep: int) -> np.ndarray:
    """The [bins, bins] matrix that keeps a frame's first ``keep`` DCT-II coefficients (orthonormal).

    ``frame @ cepstral_lifter(bins, keep)`` is the frame smoothed along
    frequency: ``idct(dct(frame) * [1] * keep + [0] * (bins - keep))``, the
    spectral envelope of cepstral analysis (low quefrencies: the formants)
    without the harmonic ripple (high quefrencies: the F0 spacing).
    """
    n = np.arange(bins)
    dct = np.sqrt(2.0 / bins) * np.cos(np.pi * (n[None, :] + 0.5) * n[:, None] / bins)
    dct[0] /= np.sqrt(2.0)
    kept = dct[:keep]
    return (kept.T @ kept).astype(np.float32)


def cnn(block_shape: tuple[int, int], width: int = 16, stages: int = 4, dropout: float = 0.3,
        envelope_cepstra: int = 0) -> keras.Model:
    """The default model: a small VGG-style CNN that keeps frequency position.

    Four stages of 3x3 conv + batch norm + ReLU, doubling the channels
    (16-32-64-128) and halving both axes after each of the first three. Then
    the time axis is averaged away (a block's gender does not depend on
    *when* in the block something happens) but the frequency axis is kept and
    flattened: *where* the energy sits (F0 harmonics, formants) is the cue.
    About 0.1 M parameters and 22 M multiply-adds per 0.96 s block; the
    measurements behind these choices are in WORKSPACE.md.

    Args:
      block_shape: (frames, bins) of one block.
      width: channels of the first stage.
      stages: conv stages.
      dropout: before the output layer.
      envelope_cepstra: when positive, each frame is first smoothed along
        frequency to its first N cepstral coefficients (a fixed, untrained
        lifter): the model sees formants and spectral shape, not F0's harmonics.
    """
    frames, bins = block_shape
    inputs = keras.Input(shape=block_shape, name="block")
    x = inputs
    if envelope_cepstra:
        lifter = cepstral_lifter(bins, envelope_cepstra)
        x = layers.Dense(bins, use_bias=False, trainable=False, name="cepstral_lifter",
                         kernel_initializer=keras.initializers.Constant(lifter))(x)
    x = layers.Reshape((frames, bins, 1))(x)
    for stage in range(stages):
        x = _conv_bn_relu(x, width * 2**stage, name=f"stage{stage + 1}")
        if stage < stages - 1:
            x = layers.MaxPooling2D(name=f"stage{stage + 1}_pool")(x)
    # [time, freq, channels] -> [time, freq * channels], then mean over time.
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]), name="keep_frequency")(x)
    x = layers.GlobalAveragePooling1D(name="time_mean")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _female_probability(x), name="cnn_envelope" if envelope_cepstra else "cnn")


def cnn_envelope(block_shape: tuple[int, int]) -> keras.Model:
    """``cnn`` on the spectral envelope only (``ENVELOPE_CEPSTRA`` cepstral coefficients per frame).

    A model less tied to absolute F0 (issue 9): raised-pitch emotional speech
    from men keeps their formants, which the envelope keeps and the harmonics
    do not.
    """
    return cnn(block_shape, envelope_cepstra=ENVELOPE_CEPSTRA)


MODELS: dict[str, Callable[[tuple[int, int]], keras.Model]] = {
    "cnn": cnn,
    "cnn_envelope": cnn_envelope,
    "seed_conv2d": seed_conv2d,
    "seed_conv1d": seed_conv1d,
}
DEFAULT_MODEL = "cnn"


def build_model(name: str, block_shape: tuple[int, int]) -> keras.Model:
    """Builds a registered model.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return builder(tuple(block_shape))
