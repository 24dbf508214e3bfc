"""The model registry: shapes, sizes, and the seed models' layer stacks."""

import numpy as np
import pytest
import tf_keras as keras

from model.train import models
from pipeline import features


@pytest.mark.parametrize("name", sorted(models.MODELS))
@pytest.mark.parametrize("feature_set", [features.LOG_MEL, features.STFT_SEED], ids=lambda fs: fs.name)
def test_every_model_maps_blocks_to_one_probability(name, feature_set):
    model = models.build_model(name, feature_set.block_shape)
    x = np.random.default_rng(0).normal(size=(3, *feature_set.block_shape)).astype(np.float32)
    p = model(x, training=False).numpy()
    assert p.shape == (3, 1) and np.all((p > 0) & (p < 1))
    assert model.layers[-1].dtype == "float32"  # stays float32 under mixed precision


def test_default_cnn_is_small():
    model = models.build_model(models.DEFAULT_MODEL, features.LOG_MEL.block_shape)
    assert model.count_params() <= 1_000_000


def test_seed_models_keep_the_seed_layer_stacks():
    conv2d = models.build_model("seed_conv2d", features.STFT_SEED.block_shape)
    kinds = [type(layer).__name__ for layer in conv2d.layers]
    assert kinds == ["InputLayer", "Reshape", "Resizing", "Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten",
                     "Dense"]
    assert [layer.filters for layer in conv2d.layers if isinstance(layer, keras.layers.Conv2D)] == [34, 64]
    assert conv2d.layers[2].output_shape[1:3] == (50, 256)  # resized to half
    conv1d = models.build_model("seed_conv1d", features.STFT_SEED.block_shape)
    kinds = [type(layer).__name__ for layer in conv1d.layers]
    assert kinds == ["InputLayer", "BatchNormalization", "Conv1D", "MaxPooling1D", "AveragePooling1D", "Dropout",
                     "Flatten", "Dense"]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: .*cnn.*seed_conv1d"):
        models.build_model("resnet", (96, 64))


def test_cepstral_lifter_keeps_the_first_dct_coefficients():
    import scipy.fft

    frames = np.random.default_rng(1).normal(size=(7, 64))
    coefficients = scipy.fft.dct(frames, type=2, norm="ortho", axis=-1)
    coefficients[:, 16:] = 0.0
    expected = scipy.fft.idct(coefficients, type=2, norm="ortho", axis=-1)
    np.testing.assert_allclose(frames @ models.cepstral_lifter(64, 16), expected, atol=1e-5)


def test_envelope_model_does_not_see_harmonic_ripple_but_sees_the_envelope():
    """Ripple at high quefrency (F0's harmonics) is projected out exactly; a broad bump (a formant) is not."""
    model = models.build_model("cnn_envelope", features.LOG_MEL.block_shape)
    frames, bins = features.LOG_MEL.block_shape
    x = np.random.default_rng(0).normal(size=(2, frames, bins)).astype(np.float32)
    k = np.arange(bins)
    ripple = np.cos(np.pi * (k + 0.5) * 32 / bins).astype(np.float32)  # a peak every 4 bins: DCT index 32
    bump = np.exp(-0.5 * ((k - 20) / 6.0) ** 2).astype(np.float32)
    base = model(x, training=False).numpy()
    np.testing.assert_allclose(model(x + 2.0 * ripple, training=False).numpy(), base, atol=1e-5)
    assert np.abs(model(x + 2.0 * bump, training=False).numpy() - base).max() > 1e-4
    lifter = model.get_layer("cepstral_lifter")
    assert not lifter.trainable_weights  # fixed, never trained
