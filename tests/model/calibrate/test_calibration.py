"""model.predict.calibration on generated scores: each method calibrates, stays monotone and round-trips as JSON."""

import json
import math

import numpy as np
import pytest

from model.calibrate import fitting
from model.predict import calibration
from tests.helpers import run_python


def miscalibrated(n: int = 3000, sharpen: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a known posterior q, and overconfident scores sigmoid(sharpen * logit(q) - 0.4).

    The scores rank clips exactly as q does, so every method can recover q;
    the shift also moves the decision point, which only platt and isotonic undo.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-(sharpen * z - 0.4)))
    return p, y


@pytest.mark.parametrize("method", calibration.METHODS)
def test_each_method_reduces_the_ece_of_overconfident_scores(method):
    p, y = miscalibrated()
    test_p, test_y = miscalibrated(seed=1)  # judged on other clips than it was fitted on
    before = fitting.expected_calibration_error(test_p, test_y)
    cal = fitting.fit(p, y, method)
    after = fitting.expected_calibration_error(cal.apply(test_p), test_y)
    assert before > 0.08
    assert after < 0.035 and after < before / 3


def test_platt_and_temperature_recover_the_known_distortion():
    p, y = miscalibrated(n=20000, seed=2)
    assert fitting.fit(p, y, "temperature").params["temperature"] == pytest.approx(3.0, rel=0.15)
    platt = fitting.fit(p, y, "platt").params
    assert platt["slope"] == pytest.approx(1 / 3, rel=0.1)
    assert platt["intercept"] == pytest.approx(0.4 / 3, abs=0.06)


@pytest.mark.parametrize("method", calibration.METHODS)
def test_apply_is_monotone_and_maps_into_the_unit_interval(method):
    p, y = miscalibrated()
    cal = fitting.fit(p, y, method)
    grid = np.concatenate([[0.0, 1e-12, 1e-7], np.linspace(0, 1, 2001), [1 - 1e-7, 1 - 1e-12, 1.0]])
    grid.sort()
    out = cal.apply(grid)
    assert out.shape == grid.shape and out.dtype == np.float64
    assert np.all((out >= 0) & (out <= 1))
    assert np.all(np.diff(out) >= 0)
    assert isinstance(cal.apply(0.7), float) and cal.apply(0.7) == pytest.approx(float(cal.apply(np.array([0.7]))[0]))


def test_isotonic_apply_reproduces_sklearn():
    from sklearn.isotonic import IsotonicRegression

    p, y = miscalibrated(n=500)
    cal = fitting.fit(p, y, "isotonic")
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    grid = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(cal.apply(grid), ref.predict(grid), atol=1e-12)


def test_temperature_keeps_every_decision_and_platt_fits_a_perfectly_separated_set():
    p, y = miscalibrated()
    cal = fitting.fit(p, y, "temperature")
    assert np.array_equal(calibration.predicted_labels(cal.apply(p)), calibration.predicted_labels(p))
    separated_p = np.array([0.01, 0.2, 0.3, 0.7, 0.8, 0.99])
    separated_y = np.array([0, 0, 0, 1, 1, 1])
    for method in calibration.METHODS:
        out = fitting.fit(separated_p, separated_y, method).apply(separated_p)
        assert np.all(np.isfinite(out)) and np.all(np.diff(out) >= 0), method


def test_platt_refuses_scores_that_rank_the_genders_backwards():
    p, y = miscalibrated()
    with pytest.raises(ValueError, match="backwards"):
        fitting.fit(p, 1 - y, "platt")


def test_identity_is_exact():
    p = np.random.default_rng(3).random(100).astype(np.float32)
    ident = calibration.identity()
    assert np.array_equal(ident.apply(p), p.astype(np.float64))
    assert ident.apply(0.123456789) == 0.123456789
    assert fitting.fit(p, np.zeros(100, int), "identity") == ident
    assert ident.to_dict() == {"method": "identity", "params": {}}


@pytest.mark.parametrize("method", calibration.METHODS)
def test_to_dict_round_trips_through_json(method):
    p, y = miscalibrated(n=400)
    cal = fitting.fit(p, y, method)
    text = json.dumps(cal.to_dict(), allow_nan=False)  # finite numbers only
    back = calibration.Calibration.from_dict(json.loads(text))
    assert back == cal
    grid = np.linspace(0, 1, 101)
    assert np.array_equal(back.apply(grid), cal.apply(grid))


@pytest.mark.parametrize("bad", [
    {"method": "platt", "params": {"slope": float("nan"), "intercept": 0.0}},
    {"method": "platt", "params": {"slope": 1.0, "intercept": float("inf")}},
    {"method": "platt", "params": {"slope": -1.0, "intercept": 0.0}},
    {"method": "platt", "params": {"slope": 1.0}},
    {"method": "temperature", "params": {"temperature": 0.0}},
    {"method": "temperature", "params": {"temperature": "hot"}},
    {"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.0, float("nan")]}},
    {"method": "isotonic", "params": {"x": [0.0, 0.5, 1.0], "y": [0.2, 0.1, 0.9]}},
    {"method": "isotonic", "params": {"x": [0.0, 1.0], "y": [0.0]}},
    {"method": "isotonic", "params": {"x": "01", "y": "01"}},
    {"method": "histogram", "params": {}},
    {"params": {}},
    [],
])
def test_from_dict_refuses_what_would_not_be_a_monotone_probability(bad):
    with pytest.raises(ValueError):
        calibration.Calibration.from_dict(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, 1.5])
def test_non_finite_or_out_of_range_scores_are_refused_clearly(value):
    p, y = miscalibrated(n=200)
    cal = fitting.fit(p, y, "platt")
    scores = np.array([0.2, value, 0.9])
    expected = "finite" if not math.isfinite(value) else r"\[0, 1\]"
    with pytest.raises(ValueError, match=expected):
        cal.apply(scores)
    with pytest.raises(ValueError, match=expected):
        fitting.fit(np.append(p, value), np.append(y, 1), "isotonic")
    with pytest.raises(ValueError, match=expected):
        fitting.expected_calibration_error(scores, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=expected):
        fitting.coverage_curve(scores, np.array([0, 1, 1]), [0.5])
    with pytest.raises(ValueError, match=expected):
        calibration.confidence(value)


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="labels"):
        fitting.expected_calibration_error(np.array([0.2, 0.8]), np.array([0]))
    with pytest.raises(ValueError, match="0 \\(male\\) or 1"):
        fitting.fit(np.array([0.2, 0.8]), np.array([0, 2]), "platt")
    with pytest.raises(ValueError, match="empty"):
        fitting.expected_calibration_error(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="unknown"):
        fitting.fit(np.array([0.2, 0.8]), np.array([0, 1]), "histogram")


def test_ece_on_a_hand_checked_example():
    # Confidences 0.9, 0.9, 0.6, 0.6 (p = 0.9, 0.1, 0.6, 0.4); correct: yes, yes, yes, no.
    # 10 bins over [0.5, 1]: bin [0.9, 0.95) holds two clips, accuracy 1 (gap 0.1); bin [0.6, 0.65) holds two,
    # accuracy 0.5 (gap 0.1). ECE = 0.5 * 0.1 + 0.5 * 0.1.
    p, y = np.array([0.9, 0.1, 0.6, 0.4]), np.array([1, 0, 1, 1])
    assert fitting.expected_calibration_error(p, y) == pytest.approx(0.1)
    rows = fitting.reliability(p, y)
    assert [(r["low"], r["clips"], r["accuracy"]) for r in rows] == [(pytest.approx(0.6), 2, 0.5),
                                                                     (pytest.approx(0.9), 2, 1.0)]
    # A perfectly confident, perfectly right set; 1.0 belongs to the last bin.
    assert fitting.expected_calibration_error(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0
    assert calibration.confidence(np.array([0.3, 0.5, 1.0])).tolist() == [0.7, 0.5, 1.0]


def test_coverage_curve_on_a_hand_checked_example():
    # Confidences: 0.95 (right), 0.8 (wrong), 0.7 (right), 0.55 (wrong), 0.99 (right).
    p = np.array([0.95, 0.2, 0.3, 0.55, 0.01])
    y = np.array([1, 1, 0, 0, 0])
    curve = fitting.coverage_curve(p, y, [0.5, 0.6, 0.75, 0.9, 0.99, 1.0])
    assert [pt.answered for pt in curve] == [5, 4, 3, 2, 1, 0]
    assert [pt.coverage for pt in curve] == [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    assert [pt.error_rate for pt in curve[:5]] == pytest.approx([2 / 5, 1 / 4, 1 / 3, 0.0, 0.0])
    assert math.isnan(curve[-1].error_rate) and curve[-1].to_dict()["error_rate"] is None
    assert curve[1].to_dict() == {"threshold": 0.6, "answered": 4, "coverage": 0.8, "error_rate": 0.25}


def test_out_of_fold_never_uses_a_speakers_own_clips():
    p, y = miscalibrated(n=600)
    speakers = np.arange(600) // 6
    oof = fitting.out_of_fold(p, y, "isotonic", folds=5, groups=speakers)
    in_sample = fitting.fit(p, y, "isotonic").apply(p)
    # In-sample isotonic is (near) perfectly calibrated by construction; out of fold it is not.
    assert fitting.expected_calibration_error(in_sample, y) < 1e-9
    assert fitting.expected_calibration_error(oof, y) > 1e-4
    assert fitting.expected_calibration_error(oof, y) < fitting.expected_calibration_error(p, y)
    with pytest.raises(ValueError, match="2 folds"):
        fitting.out_of_fold(p, y, "platt", groups=np.zeros(600))


def test_importing_calibration_loads_neither_sklearn_nor_tensorflow():
    code = ("import sys, model.predict.calibration; "
            "print(sorted(m for m in ('sklearn', 'scipy', 'tensorflow') if m in sys.modules))")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
