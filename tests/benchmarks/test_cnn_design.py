"""benchmarks.cnn_design: variants built from the preset, registered for their run only, trained side by side."""

import pytest

from benchmarks import cnn_design
from model.train import config as config_lib
from model.train import models
from pipeline import features
from tests.benchmarks.smoke import assert_finite, run_benchmark


def test_variant_configs_are_the_preset_on_the_cpu(tmp_path):
    preset = config_lib.config_from_flagfile(cnn_design.PRESET, data_dir="d", model_dir="m")
    config = cnn_design.variant_config("cnn_width8", "d", str(tmp_path), epochs=2)
    assert (config.model, config.strategy, config.export, config.epochs) == ("cnn_width8", "cpu", False, 2)
    assert config.model_dir == str(tmp_path / "cnn_width8")
    assert preset.augment is not None
    assert config.augment == preset.augment  # the preset's augmentation, not a copy of old values
    assert (config.learning_rate, config.batch_size, config.seed) == (preset.learning_rate, preset.batch_size,
                                                                      preset.seed)
    assert cnn_design.variant_config("cnn", "d", str(tmp_path)).epochs == preset.epochs
    assert cnn_design.variant_config("cnn_no_augment", "d", str(tmp_path)).augment is None


def test_a_variant_is_registered_only_while_it_trains():
    before = dict(models.MODELS)
    with cnn_design.registered("cnn_width8", cnn_design.VARIANTS["cnn_width8"][0]):
        model = models.build_model("cnn_width8", features.LOG_MEL.block_shape)
    assert models.MODELS == before and "cnn_width8" not in models.MODELS
    assert model.count_params() < models.build_model("cnn", features.LOG_MEL.block_shape).count_params()
    assert cnn_design.multiply_adds(model) > 0


@pytest.mark.slow
def test_cnn_design_trains_a_variant_from_outside_the_registry(log_mel_data, tmp_path):
    rows = run_benchmark("cnn_design", f"--data_dir={log_mel_data}", f"--work_dir={tmp_path}", "--epochs=1",
                         "--variants=cnn_global_pool")
    assert [r["variant"] for r in rows] == ["cnn_global_pool"]
    assert_finite(rows[0], ["params", "mmac_per_block", "train_s", "block_accuracy", "clip_accuracy",
                            "balanced_clip_accuracy", "val_auc_last"])
    # Global pooling drops the dense layer's flattened frequency rows: fewer parameters than the default cnn.
    assert 0 < rows[0]["params"] < models.build_model("cnn", features.LOG_MEL.block_shape).count_params()
