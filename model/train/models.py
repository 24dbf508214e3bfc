"""Named Keras model builders (functional ``tf_keras``), chosen by ``--model``.

Every builder takes the block shape ``(frames, bins)`` of normalized features
and returns a model with one sigmoid output: the probability that the voice is
female. The output layer is float32 so mixed-precision training stays stable.
``cnn_ina_fusion`` also takes inaSpeechSegmenter's gender CNN (``model.train.ina``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from model.train import ina as ina_lib
from pipeline import features


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


# ina patches per 0.96 s block, evenly spaced from its first frame to its last (0 and 28 of 96): every
# frame of the block is in one, no patch reaches outside it (so a block's answer is its own, as predict's
# windows and --segments need), and ina's cost is two CNN calls per block.
INA_PATCHES_PER_BLOCK = 2
# The fusion's layers that ``consistency.ConsistencyTrainer`` calls on their own.
INA_PATCHES_LAYER = "ina_patches"
INA_BRANCH_LAYER = "ina_gender_cnn"
LOGIT_EPS = 1e-6  # logits of p clipped to [EPS, 1 - EPS]: a saturated float32 output stays finite


def _logit(p: tf.Tensor) -> tf.Tensor:
    p = tf.clip_by_value(tf.cast(p, tf.float32), LOGIT_EPS, 1.0 - LOGIT_EPS)
    return tf.math.log(p) - tf.math.log1p(-p)


def ina_patch_starts(frames: int, patches: int = INA_PATCHES_PER_BLOCK) -> list[int]:
    """First frames of the ina patches of a block of ``frames`` (evenly spaced, the last ending the block)."""
    last = frames - ina_lib.PATCH_FRAMES
    if last < 0:
        raise ValueError(f"a block of {frames} frames is shorter than ina's {ina_lib.PATCH_FRAMES}-frame patch")
    if patches == 1:
        return [last // 2]  # centred
    return sorted({round(i * last / (patches - 1)) for i in range(patches)})


def cnn_ina_fusion(block_shape: tuple[int, int], ina_cnn: keras.Model, cnn_branch: keras.Model | None = None,
                   ina_trainable_layers: int = 0, ina_patches: int = INA_PATCHES_PER_BLOCK) -> keras.Model:
    """Issue 21's fusion: the mean of ``cnn``'s logit and inaSpeechSegmenter's gender CNN's, per block.

    The input is a ``log_mel_ina`` block (``features.LOG_MEL_INA``): its first
    64 bins (normalized log_mel) go to ``cnn``; its ina bins (left raw by the
    normalizer: ina standardises each patch itself) are cut into
    ``ina_patch_starts`` 68-frame patches, one batch for ina's CNN, whose
    female logits are averaged. The output is sigmoid of the mean of the two
    logits, the ``fuse_mean_logit`` candidate of ``benchmarks.candidates``.

    Args:
      block_shape: (frames, 88) of a ``log_mel_ina`` block.
      ina_cnn: ``ina.load_ina_cnn``'s model (softmax female, male).
      cnn_branch: a ``cnn`` on (frames, 64) (e.g. the shipped model's, weights
        and all; with ``trainable`` False it stays fixed and runs in inference
        mode); default a new one, trained from scratch.
      ina_trainable_layers: the last N of ina's layers with weights that train
        (0: ina frozen, a fixed feature of the fusion).
      ina_patches: ina patches per block (``ina_patch_starts``; 1: one, centred).
    """
    frames, bins = block_shape
    log_mel_bins = features.LOG_MEL.num_bins
    ina_bins = bins - log_mel_bins
    if ina_bins != features.INA_MEL.num_bins:
        raise ValueError(f"cnn_ina_fusion needs {features.LOG_MEL_INA.name} blocks "
                         f"({log_mel_bins} + {features.INA_MEL.num_bins} bins), got {bins} bins")
    cnn_branch = cnn_branch or cnn((frames, log_mel_bins))
    ina_lib.set_trainable_layers(ina_cnn, ina_trainable_layers)
    ina_branch = ina_lib.patch_classifier(ina_cnn, ina_lib.PATCH_FRAMES, ina_bins, name=INA_BRANCH_LAYER)
    starts = ina_patch_starts(frames, ina_patches)

    inputs = keras.Input(shape=block_shape, name="block")
    log_mel = layers.Lambda(lambda x: x[..., :log_mel_bins], name="log_mel_bins")(inputs)
    # [n, frames, 24] -> [patches * n, 68, 24]: one CNN call for every patch of every block.
    patches = layers.Lambda(
        lambda x: tf.concat([x[:, s:s + ina_lib.PATCH_FRAMES, log_mel_bins:] for s in starts], axis=0),
        name=INA_PATCHES_LAYER)(inputs)
    # A fixed (trained) branch runs as in inference, without its dropout, also while ina trains beside it.
    cnn_p = cnn_branch(log_mel, training=None if cnn_branch.trainable else False)
    cnn_logit = layers.Lambda(_logit, name="cnn_logit")(cnn_p)
    # Always in inference mode, also while it trains (Keras' transfer-learning guide for a pretrained network with
    # batch norms): its batch norms keep the wheel's statistics, and the function trained is the one exported.
    ina_female = ina_branch(patches, training=False)[:, :1]
    ina_logit = layers.Lambda(
        lambda p: tf.reduce_mean(tf.reshape(_logit(p), [len(starts), -1, 1]), axis=0), name="ina_logit")(ina_female)
    fused = layers.Average(name="mean_logit", dtype="float32")([cnn_logit, ina_logit])
    p_female = layers.Activation("sigmoid", dtype="float32", name="p_female")(fused)
    return keras.Model(inputs, p_female, name="cnn_ina_fusion")


MODELS: dict[str, Callable[[tuple[int, int]], keras.Model]] = {
    "cnn": cnn,
    "cnn_envelope": cnn_envelope,
    "seed_conv2d": seed_conv2d,
    "seed_conv1d": seed_conv1d,
}
DEFAULT_MODEL = "cnn"
# Built from the ina wheel as well as the block shape, so not in MODELS (whose builders take the shape alone).
FUSION_MODEL = "cnn_ina_fusion"


def build_model(name: str, block_shape: tuple[int, int], ina_wheel: str = "",
                ina_trainable_layers: int = 0, cnn_branch: keras.Model | None = None) -> keras.Model:
    """Builds a registered model, or the fusion (``FUSION_MODEL``) from the ina wheel (and ``cnn_branch``).

    Raises:
      ValueError: for an unknown name, listing the known ones; the fusion without ``ina_wheel``.
      FileNotFoundError: ``ina_wheel`` is not the wheel.
    """
    if name == FUSION_MODEL:
        if not ina_wheel:
            raise ValueError(f"--model={FUSION_MODEL} needs --ina_wheel (pip download --no-deps "
                             "inaSpeechSegmenter==0.6.8)")
        return cnn_ina_fusion(tuple(block_shape), ina_lib.load_ina_cnn(ina_wheel), cnn_branch=cnn_branch,
                              ina_trainable_layers=ina_trainable_layers)
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted([*MODELS, FUSION_MODEL])}") from None
    return builder(tuple(block_shape))
