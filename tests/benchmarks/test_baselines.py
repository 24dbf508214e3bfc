"""benchmarks.baselines: the median-F0 estimate, and the rule on the generated job output."""

import numpy as np
import pytest

from benchmarks import baselines
from tests.benchmarks.smoke import assert_finite, run_benchmark


def pulse_train(f0_hz: float, seconds: float = 1.0) -> np.ndarray:
    """A voiced-like signal: F0 and its harmonics up to 4 kHz, amplitude falling as 1/k."""
    t = np.arange(int(seconds * baselines.RATE)) / baselines.RATE
    wave = sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, int(4000 // f0_hz) + 1))
    return (0.3 * wave).astype(np.float32)


@pytest.mark.parametrize("f0_hz", [95.0, 130.0, 210.0, 300.0])
def test_median_f0_finds_the_period_without_octave_errors(f0_hz):
    assert baselines.median_f0(pulse_train(f0_hz)) == pytest.approx(f0_hz, rel=0.03)


def test_median_f0_is_nan_without_a_periodic_frame():
    noise = np.random.default_rng(0).normal(size=baselines.RATE).astype(np.float32)
    assert np.isnan(baselines.median_f0(noise))
    assert np.isnan(baselines.median_f0(np.zeros(100, np.float32)))  # shorter than a frame


def test_rule_guesses_male_without_f0():
    f0 = np.array([100.0, 200.0, np.nan])
    assert baselines.rule(f0, 165.0).tolist() == [0.0, 1.0, 0.0]


@pytest.mark.slow
def test_baselines_benchmark_separates_the_generated_voices(log_mel_data):
    result = run_benchmark("baselines", f"--data_dir={log_mel_data}", "--split=train")
    assert result["clips"] > 0 and result["split"] == "train"
    assert_finite(result, ["male_median_f0", "female_median_f0", "balanced_clip_accuracy_165hz",
                           "best_threshold_hz_in_hindsight", "balanced_clip_accuracy_best_threshold"])
    # The generated voices have F0 90-145 Hz (male) and 175-250 Hz (female).
    assert result["male_median_f0"] < 165 < result["female_median_f0"]
    assert result["balanced_clip_accuracy_best_threshold"] >= result["balanced_clip_accuracy_165hz"] > 0.5
