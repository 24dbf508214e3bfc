"""Metrics on hand-made predictions, and `model.evaluate` on a trained run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from model import evaluate_lib, evaluation
from pipeline import features, metadata

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7, 0.95])
    m = evaluation.binary_metrics(p, y)
    assert m["confusion"] == [[2, 1], [1, 4]]
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["female"]["precision"] == pytest.approx(4 / 5) and m["female"]["recall"] == pytest.approx(4 / 5)
    assert m["male"]["precision"] == pytest.approx(2 / 3) and m["male"]["recall"] == pytest.approx(2 / 3)
    # AUC: (female, male) pairs ordered correctly: 14 of 15 (only 0.4 < 0.6 is not).
    assert m["roc_auc"] == pytest.approx(14 / 15)


def test_auc_ties_count_half_and_roc_ends_at_corners():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.5, 0.5, 0.2, 0.9])
    assert evaluation.roc_auc(p, y) == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    fpr, tpr = evaluation.roc_curve(p, y)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.isnan(evaluation.roc_auc(p[y == 1], y[y == 1]))


def test_clip_level_averages_blocks_and_groups_by_locale_age_accent():
    pred = evaluation.SplitPredictions(
        p_female=np.array([0.9, 0.7, 0.2, 0.4, 0.8]), labels=np.array([1, 1, 0, 0, 0]),
        clip_ids=np.array(["en/a.mp3", "en/a.mp3", "de/b.mp3", "de/b.mp3", "de/c.mp3"]),
        speaker_ids=np.array(["s1", "s1", "s2", "s2", "s3"]), ages=np.array(["twenties"] * 2 + [""] * 3),
        accents=np.array([""] * 5))
    clips = evaluation.clip_level(pred)
    assert clips.clip_ids.tolist() == ["de/b.mp3", "de/c.mp3", "en/a.mp3"]
    np.testing.assert_allclose(clips.p_female, [0.3, 0.8, 0.8])
    groups = evaluation.group_metrics(clips)
    assert groups["locale"]["de"] == {"clips": 2, "male": 2, "female": 0, "accuracy": 0.5, "balanced_accuracy": 0.5}
    assert groups["age"]["(blank)"]["clips"] == 2 and groups["accent"]["(blank)"]["clips"] == 3
    report = evaluation.evaluate_predictions(pred)
    assert report["speakers"] == 3 and report["clip"]["count"] == 3 and report["block"]["count"] == 5


def test_evaluate_writes_report_and_plots(trained_run, log_mel_data):
    report = evaluate_lib.evaluate(trained_run, log_mel_data, features.VALIDATION)
    meta = metadata.read_metadata(log_mel_data)
    assert report["block"]["count"] == metadata.split_blocks(meta, features.VALIDATION)
    assert report["clip"]["count"] == sum(meta["splits"][features.VALIDATION]["clips"].values())
    assert sum(map(sum, report["clip"]["confusion"])) == report["clip"]["count"]
    assert set(report["by_group"]) == {"locale", "age", "accent"}
    assert set(report["by_group"]["locale"]) <= {"en", "de"}
    for path in report["files"].values():
        assert os.path.getsize(path) > 0
    on_disk = json.load(open(report["files"]["report"]))
    assert on_disk["clip"]["accuracy"] == report["clip"]["accuracy"]
    assert "clip" in evaluate_lib.format_summary(report)


def test_evaluate_cli_and_its_errors(trained_run, log_mel_data, stft_seed_data, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "model.evaluate", f"--model_dir={trained_run}", "--split=validation"]
    ok = subprocess.run(cmd + [f"--data_dir={log_mel_data}"], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "balanced" in ok.stdout and os.path.exists(os.path.join(trained_run, "eval", "validation.json"))
    mismatch = subprocess.run(cmd + [f"--data_dir={stft_seed_data}"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
    assert mismatch.returncode != 0 and "num_bins: data 513, model 64" in mismatch.stderr
    not_a_run = subprocess.run([sys.executable, "-m", "model.evaluate", f"--model_dir={tmp_path}",
                                f"--data_dir={log_mel_data}"], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=300)
    assert not_a_run.returncode != 0 and "config.json: missing" in not_a_run.stderr


def test_empty_split_is_a_clear_error(trained_run, log_mel_data):
    # The tiny generated corpus puts no speaker in the test split.
    assert metadata.split_blocks(metadata.read_metadata(log_mel_data), features.TEST) == 0
    with pytest.raises(ValueError, match="the test split is empty"):
        evaluate_lib.evaluate(trained_run, log_mel_data, features.TEST)
