"""model.export.ina: inaSpeechSegmenter's gender CNN as an export of ours (needs the pinned wheel: downloaded here).

The wheel is a build-time dependency: the ``ina_wheel`` fixture fetches it with
``pip download --no-deps`` (the package index is reachable in CI); the tests are
skipped, saying so, where it cannot be had.
"""

import json
import os

import numpy as np
import pytest

from model.export import ina
from model.predict import classifier
from pipeline import spectrogram
from tests.helpers import generated_voice, run_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(ina_wheel, tmp_path_factory):
    return ina.export(ina_wheel, str(tmp_path_factory.mktemp("ina_export") / "export"))


def _voice(male: bool, seed: int) -> np.ndarray:
    return generated_voice(male, 3.0, seed)


def test_patch_classifier_standardises_each_patch_as_ina_does(ina_wheel):
    cnn = ina.load_ina_cnn(ina_wheel)
    fs = ina.feature_set()
    model = ina.patch_classifier(cnn, fs.block_frames, fs.num_bins)
    blocks = spectrogram.waveform_to_blocks(_voice(True, 1), fs)[0].numpy()
    flat = blocks.reshape(len(blocks), -1)
    by_hand = ((flat - flat.mean(axis=1, keepdims=True)) / flat.std(axis=1, keepdims=True)).reshape(blocks.shape)
    np.testing.assert_allclose(model(blocks).numpy(), cnn(by_hand).numpy(), atol=1e-5)


def test_the_columns_are_female_then_male(exported):
    """Generated men are male to ina's CNN on every block; were the columns swapped they would all be female."""
    lite = classifier.Classifier(exported)
    for seed in (1, 2, 3):
        p_block, _ = lite.block_probabilities(_voice(True, seed))
        assert p_block.max() < 0.05, p_block
    p_block, _ = lite.block_probabilities(_voice(False, 3))
    assert p_block.mean() > 0.5, p_block


def test_the_litert_file_equals_the_keras_model(ina_wheel, exported):
    fs = ina.feature_set()
    model = ina.patch_classifier(ina.load_ina_cnn(ina_wheel), fs.block_frames, fs.num_bins)
    wave = _voice(False, 2)
    keras_p = model(spectrogram.waveform_to_blocks(wave, fs)[0]).numpy()[:, 0]
    lite_p, _ = classifier.Classifier(exported).block_probabilities(wave)
    np.testing.assert_allclose(lite_p, keras_p, atol=1e-5)


def test_the_export_carries_the_licence_and_the_attribution(exported):
    with open(os.path.join(exported, ina.LICENSE_NAME)) as f:
        assert "MIT License" in f.read()
    with open(os.path.join(exported, "voicegender.json")) as f:
        info = json.load(f)
    assert info["model"] == "ina_gender_cnn" and "MIT" in info["attribution"]
    assert info["feature_set"]["name"] == "ina_mel" and info["feature_set"]["fft_float64"] is False
    assert os.path.getsize(os.path.join(exported, "model.tflite")) < 10e6  # issue 21: the export at most 10 MB


def test_a_file_that_is_not_the_wheel_is_one_line_and_status_1(tmp_path):
    fake = tmp_path / "inaSpeechSegmenter-0.6.8-py3-none-any.whl"
    fake.write_bytes(b"not a zip")
    proc = run_module("model.export.ina", f"--wheel={fake}", f"--output_dir={tmp_path / 'out'}")
    assert proc.returncode == 1, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "error" in line.lower()] == [
        f"model.export.ina: error: {fake}: not the inaSpeechSegmenter 0.6.8 wheel (File is not a zip file)"
    ], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
