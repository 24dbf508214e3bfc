"""Calibration as a step of the run: fitted on validation audio through the predictor, written with its checksum."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from model.calibrate import fitting, step
from model.predict import classifier, export_format
from tests.helpers import run_module


def test_a_trained_run_is_calibrated_with_no_manual_step(trained_run, log_mel_data):
    export_dir = os.path.join(trained_run, export_format.EXPORT_DIRNAME)
    info = json.load(open(os.path.join(export_dir, export_format.EXPORT_METADATA)))
    fitted_on = info[step.FITTED_ON_KEY]
    assert fitted_on["data_dir"] == log_mel_data and fitted_on["split"] == "validation"
    for key in export_format.CALIBRATION_KEYS:
        assert key in info and fitted_on[key]["clips"] > 0 and fitted_on[key]["speakers"] > 0
        assert fitted_on[key]["method"] == info[key]["method"]
    model = classifier.Classifier(export_dir)  # the checksum covers the calibration: it loads
    assert model.calibration.to_dict() == info[export_format.CALIBRATION_KEY]
    assert model.whole_file_calibration.to_dict() == info[export_format.WHOLE_FILE_CALIBRATION_KEY]
    # predict's probabilities are the calibrated ones.
    raw = 0.8
    assert model.verdict("x", raw, 1.0, speech_s=1.0).p_female == pytest.approx(model.calibration.apply(raw))


def test_the_command_refits_the_same_calibration_and_a_fresh_checksum(trained_run, log_mel_data, tmp_path):
    export_dir = tmp_path / "export"
    shutil.copytree(os.path.join(trained_run, export_format.EXPORT_DIRNAME), export_dir)
    before = json.load(open(export_dir / export_format.EXPORT_METADATA))
    for key in (*export_format.CALIBRATION_KEYS, step.FITTED_ON_KEY):
        before.pop(key)
    uncalibrated = export_format.write_export_info(str(export_dir), before)
    assert classifier.Classifier(str(export_dir)).calibration.method == "identity"
    proc = run_module("model.calibrate", f"--model_dir={export_dir}", f"--data_dir={log_mel_data}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "calibrated the default verdict:" in proc.stdout and "calibrated the --vad=none verdict:" in proc.stdout
    after = json.load(open(export_dir / export_format.EXPORT_METADATA))
    at_training = json.load(open(os.path.join(trained_run, export_format.EXPORT_DIRNAME, export_format.EXPORT_METADATA)))
    for key in export_format.CALIBRATION_KEYS:  # the same data and seeds: the same fit as at the end of training
        assert after[key] == at_training[key]
    assert after[export_format.CHECKSUM_KEY] == at_training[export_format.CHECKSUM_KEY]
    assert after[export_format.CHECKSUM_KEY] != uncalibrated[export_format.CHECKSUM_KEY]
    classifier.Classifier(str(export_dir))  # loads: the checksum was rewritten, not edited by hand


def test_a_run_whose_audio_is_gone_says_so_in_one_line(trained_run, log_mel_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(log_mel_data, data)
    meta = json.load(open(data / "metadata.json"))
    meta["sources"] = [str(tmp_path / "moved")]
    json.dump(meta, open(data / "metadata.json", "w"))
    export_dir = tmp_path / "export"
    shutil.copytree(os.path.join(trained_run, export_format.EXPORT_DIRNAME), export_dir)
    with pytest.raises(step.CalibrationError, match="has its audio under the data's sources"):
        step.calibrate(step.CalibrateConfig(model_dir=str(export_dir), data_dir=str(data)))
    proc = run_module("model.calibrate", f"--model_dir={export_dir}", f"--data_dir={data}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("calibrate: error: none of the ")
    (tmp_path / "empty").mkdir()
    not_a_model = run_module("model.calibrate", f"--model_dir={tmp_path / 'empty'}", f"--data_dir={data}")
    assert not_a_model.returncode == 1 and "missing" in not_a_model.stderr.strip().splitlines()[-1]


def test_fit_chosen_prefers_a_method_that_calibrates_and_falls_back_on_few_speakers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    speakers = np.array([f"s{i // 4}" for i in range(400)])
    # Overconfident but well-ranked scores: the logit is three times what the truth supports.
    truth = 1 / (1 + np.exp(-(2.0 * y - 1.0) - rng.normal(0, 1, 400)))
    p = 1 / (1 + np.exp(-3 * np.log(truth / (1 - truth))))
    calibration, record = fitting.fit_chosen(p, y, speakers, repeats=2)
    assert record["method"] in ("temperature", "platt", "isotonic") and record["cross_validated"]
    assert record["ece_after_in_sample"] < record["ece_before"]
    few, few_record = fitting.fit_chosen(p[:6], y[:6] if len(set(y[:6])) == 2 else np.array([0, 1, 0, 1, 0, 1]),
                                         np.array(["a"] * 6))
    assert few_record == {**few_record, "method": "temperature", "cross_validated": False}
    with pytest.raises(ValueError, match="both genders"):
        fitting.fit_chosen(p[:10], np.zeros(10, int), speakers[:10])


@pytest.mark.parametrize("field, value", [("folds", 1), ("repeats", 0), ("workers", 0)])
def test_the_config_refuses_settings_that_cannot_work(field, value):
    with pytest.raises(ValueError, match=f"--{field} must be at least"):
        step.CalibrateConfig(model_dir="m", **{field: value})
