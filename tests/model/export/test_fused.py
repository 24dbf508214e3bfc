"""model.export.fused: the shipped cnn fused with ina's gender CNN, features of both in the graph (needs the wheel)."""

import json
import os

import numpy as np
import pytest

from model.export import fused
from model.predict import classifier, export_format
from model.train import ina
from pipeline import features, spectrogram
from tests.helpers import generated_voice, run_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(ina_wheel, tmp_path_factory):
    return fused.export(ina_wheel, export_format.PRETRAINED_DIR, str(tmp_path_factory.mktemp("fused") / "export"))


def _voice(male: bool, seed: int) -> np.ndarray:
    return generated_voice(male, 3.0, seed)


def test_the_litert_file_equals_the_keras_fusion(ina_wheel, exported):
    model, normalizer = fused.build(ina_wheel, export_format.PRETRAINED_DIR)
    wave = np.concatenate([_voice(False, 2), _voice(True, 4)])
    blocks, _ = spectrogram.waveform_to_blocks(wave, features.LOG_MEL_INA)
    keras_p = model(normalizer(blocks)).numpy()[:, 0]
    lite_p, _ = classifier.Classifier(exported).block_probabilities(wave)
    assert len(lite_p) == len(keras_p) == 6
    np.testing.assert_allclose(lite_p, keras_p, atol=1e-5)


def test_the_cnn_branch_is_the_shipped_model(ina_wheel):
    """The weights were copied by name: the branch on log_mel blocks answers as the shipped LiteRT file does."""
    cnn = fused.cnn_from_export(export_format.PRETRAINED_DIR)
    normalizer = fused.fused_normalizer(export_format.PRETRAINED_DIR)
    wave = _voice(True, 5)
    blocks, _ = spectrogram.waveform_to_blocks(wave, features.LOG_MEL)
    branch_p = cnn((blocks - normalizer.mean[:64]) / normalizer.std[:64]).numpy()[:, 0]
    shipped_p, _ = classifier.Classifier().block_probabilities(wave)
    np.testing.assert_allclose(branch_p, shipped_p, atol=1e-5)
    np.testing.assert_array_equal(normalizer.mean[64:], 0.0)
    np.testing.assert_array_equal(normalizer.std[64:], 1.0)


def test_generated_men_are_male_and_women_female(exported):
    """The fusion reads ina's column 0 as female: swapped, every man's ina logit would pull towards female."""
    lite = classifier.Classifier(exported)
    for seed in (1, 2, 3):
        assert lite.block_probabilities(_voice(True, seed))[0].max() < 0.2
        assert lite.block_probabilities(_voice(False, seed))[0].mean() > 0.5


def test_the_export_carries_the_licence_the_attribution_and_the_cnns_run_files(exported):
    with open(os.path.join(exported, ina.LICENSE_NAME)) as f:
        assert "MIT License" in f.read()
    with open(os.path.join(exported, export_format.EXPORT_METADATA)) as f:
        info = json.load(f)
    assert info["model"] == "cnn_ina_fusion" and "MIT" in info["attribution"]
    assert info["feature_set"]["name"] == "log_mel_ina"
    for name in fused.RUN_FILES:
        assert os.path.isfile(os.path.join(exported, name)), name


def test_an_export_that_is_not_a_cnn_is_refused(ina_wheel, exported, tmp_path):
    with pytest.raises(ValueError, match="not an export of a `cnn` on log_mel"):
        fused.cnn_from_export(exported)
    with pytest.raises(ValueError, match="must differ"):
        fused.export(ina_wheel, exported, exported)


def test_a_file_that_is_not_the_wheel_is_one_line_and_status_1(tmp_path):
    fake = tmp_path / "inaSpeechSegmenter-0.6.8-py3-none-any.whl"
    fake.write_bytes(b"not a zip")
    proc = run_module("model.export.fused", f"--wheel={fake}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"model.export.fused: error: {fake}: not the inaSpeechSegmenter 0.6.8 wheel "
                      "(File is not a zip file)"], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
