"""The model registry: shapes, sizes, and the seed models' layer stacks."""

import numpy as np
import pytest
import tf_keras as keras

from model.train import models
from pipeline import features
from tests.helpers import stand_in_ina_cnn


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


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), models.LOGIT_EPS, 1 - models.LOGIT_EPS)
    return np.log(p / (1 - p))


def test_the_fusion_is_the_mean_of_the_cnn_logit_and_the_mean_ina_patch_logit():
    fs = features.LOG_MEL_INA
    cnn, ina_cnn = models.cnn((96, 64)), stand_in_ina_cnn()
    fusion = models.cnn_ina_fusion(fs.block_shape, ina_cnn, cnn_branch=cnn)
    x = np.random.default_rng(1).normal(size=(5, *fs.block_shape)).astype(np.float32)
    assert models.ina_patch_starts(96) == [0, 28] and models.ina_patch_starts(68) == [0]
    assert models.ina_patch_starts(96, 1) == [14] and models.ina_patch_starts(96, 3) == [0, 14, 28]
    cnn_logit = _logit(cnn(x[..., :64]).numpy()[:, 0])
    ina_logits = []
    for start in (0, 28):
        patch = x[:, start:start + 68, 64:]
        flat = patch.reshape(5, -1)
        standardised = ((flat - flat.mean(1, keepdims=True)) / flat.std(1, keepdims=True)).reshape(patch.shape)
        ina_logits.append(_logit(ina_cnn(standardised).numpy()[:, 0]))  # column 0: female
    expected = 1 / (1 + np.exp(-(cnn_logit + np.mean(ina_logits, axis=0)) / 2))
    np.testing.assert_allclose(fusion(x).numpy()[:, 0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="log_mel_ina"):
        models.cnn_ina_fusion(features.LOG_MEL.block_shape, stand_in_ina_cnn())


def test_ina_trainable_layers_freezes_all_but_the_last_weighted_layers():
    fusion = models.cnn_ina_fusion(features.LOG_MEL_INA.block_shape, stand_in_ina_cnn(), ina_trainable_layers=1)
    trainable = {w.name.split("/")[0] for w in fusion.trainable_weights}
    assert "ina_out" in trainable and not {"ina_conv", "ina_bn"} & trainable and "stage1_conv" in trainable
    frozen = models.cnn_ina_fusion(features.LOG_MEL_INA.block_shape, stand_in_ina_cnn(), ina_trainable_layers=0)
    assert not {"ina_conv", "ina_bn", "ina_out"} & {w.name.split("/")[0] for w in frozen.trainable_weights}
    with pytest.raises(ValueError, match=r"ina_trainable_layers must be in \[0, 3\]"):
        models.cnn_ina_fusion(features.LOG_MEL_INA.block_shape, stand_in_ina_cnn(), ina_trainable_layers=4)


def test_the_fusion_needs_the_ina_wheel():
    with pytest.raises(ValueError, match="needs --ina_wheel"):
        models.build_model(models.FUSION_MODEL, features.LOG_MEL_INA.block_shape)
