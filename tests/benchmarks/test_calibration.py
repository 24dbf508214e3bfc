"""benchmarks.calibration: the shipped model's preprocessing flags, and a run on generated data without ../shared."""

import json

import pytest

from beam_jobs.config import PreprocessConfig
from benchmarks import calibration as bench
from model.predict import calibration
from tests.benchmarks.smoke import assert_finite, run_benchmark


def test_preprocess_args_are_the_shipped_models_flags_less_paths():
    with open(bench.SHIPPED_METADATA, encoding="utf-8") as f:
        meta = json.load(f)
    args = bench.shipped_preprocess_args(meta)
    assert not any(a.startswith(("--cv_dir", "--output_dir", "--overwrite")) for a in args)
    flags = meta["flags"]
    assert f"--seed={flags['seed']}" in args
    assert "--split_fractions=" + ",".join(str(v) for v in flags["split_fractions"]) in args
    assert ("--balance_clips" if flags["balance_clips"] else "--nobalance_clips") in args
    assert f"--features={meta['feature_set']['name']}" in args
    fields = {f.name for f in PreprocessConfig.__dataclass_fields__.values()}
    assert all(a.lstrip("-").split("=")[0].removeprefix("no") in fields | {"features", "block_frames"} for a in args)


def test_shipped_corpora_are_found_only_when_all_are_there(tmp_path):
    meta = {"sources": [f"/elsewhere/{name}" for name in bench.PERMITTED_CORPORA]}
    assert bench.shipped_corpora(meta, str(tmp_path)) is None
    with pytest.raises(ValueError, match="not in"):
        bench.shipped_corpora({"sources": ["/x/expressive"]}, str(tmp_path))


@pytest.mark.slow
def test_calibration_benchmark_runs_on_generated_data_without_shared(tmp_path):
    missing = str(tmp_path / "no_shared")
    result = run_benchmark("calibration", f"--shared_dir={missing}", f"--work_dir={tmp_path / 'work'}",
                           "--bootstrap=50")
    assert "generated" in result["data"] and result["held_out_matches_shipped"] is None
    assert result["validation_clips"] > 0 and result["test_clips"] > 0
    assert result["expressive"] is None
    assert result["chosen_method"] in calibration.METHODS
    cal = calibration.Calibration.from_dict(result["calibration"])  # storable as is
    assert cal.method == result["chosen_method"]
    for key in ("test_before", "test_after"):
        assert_finite(result[key], ["ece", "error_rate"])
        curve = result[key]["curve"]
        assert [pt["threshold"] for pt in curve] == list(bench.CURVE_THRESHOLDS)
        assert all(0 <= pt["coverage"] <= 1 for pt in curve)
        assert [pt["coverage"] for pt in curve] == sorted((pt["coverage"] for pt in curve), reverse=True)
    assert_finite(result, ["min_confidence", "today_error_rate"])
    assert 0.5 <= result["min_confidence"] < 1
    assert isinstance(result["goal_ece_met"], bool) and isinstance(result["goal_selective_met"], bool)
    for method in calibration.METHODS:
        assert "validation_cv_ece" in result["methods"][method] or "error" in result["methods"][method]


def test_best_two_sided_tries_every_pair_of_cuts():
    import numpy as np

    # Sorted p: 0.1 (m), 0.2 (f, wrong), 0.4 (m), 0.6 (m, wrong), 0.7 (f), 0.9 (f), 0.95 (m, wrong), 0.99 (f).
    p = np.array([0.1, 0.2, 0.4, 0.6, 0.7, 0.9, 0.95, 0.99])
    y = np.array([0, 1, 0, 0, 1, 1, 0, 1])
    assert bench.best_two_sided(p, y, 1.0) == {"answered": 8, "coverage": 1.0, "error_rate": 3 / 8, "wrong": 3}
    # >= 6 of 8: refusing only 0.6 leaves 2 wrong of 7 (0.2 and 0.95); answering 6 cannot leave fewer than 2.
    best = bench.best_two_sided(p, y, 0.75)
    assert (best["answered"], best["wrong"]) == (7, 2)
    # >= 4 of 8: refuse 0.2, 0.4 and 0.6 (cuts on both sides): 1 wrong (0.95) of 5.
    best = bench.best_two_sided(p, y, 0.5)
    assert (best["answered"], best["wrong"]) == (5, 1)
