"""Export refuses what it cannot serve: non-finite weights or normalization statistics."""

import numpy as np
import pytest
import tf_keras as keras

from model.export import serving as export
from model.train import loading, models
from pipeline import features
from pipeline.metadata import Normalizer

FS = features.LOG_MEL


def _normalizer(mean=0.0, std=1.0) -> Normalizer:
    return Normalizer(np.full(FS.num_bins, mean, np.float32), np.full(FS.num_bins, std, np.float32))


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.mixed_precision.set_global_policy("float32")


def test_a_nan_weight_is_refused_naming_the_variable(tmp_path):
    model = models.build_model("seed_conv1d", FS.block_shape)
    weights = model.get_weights()
    index = next(i for i, w in enumerate(model.weights) if "kernel" in w.name)
    weights[index].flat[3] = np.nan
    model.set_weights(weights)
    with pytest.raises(ValueError, match=f"non-finite.*{model.weights[index].name}.*1 of"):
        export.export_saved_model(model, FS, _normalizer(), str(tmp_path / "export"))
    assert not (tmp_path / "export").exists()


def test_non_finite_normalization_is_refused(tmp_path):
    model = models.build_model("seed_conv1d", FS.block_shape)
    with pytest.raises(ValueError, match="normalization std"):
        export.export_saved_model(model, FS, _normalizer(std=np.inf), str(tmp_path / "export"))
    loading.check_finite(model, _normalizer())  # finite: passes
