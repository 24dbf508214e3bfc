"""benchmarks.segments: the scoring on a hand-made case, and a tiny run on synthetic voices."""

import numpy as np
import pytest

from benchmarks import recordings
from benchmarks import segments as bench
from model.predict import segments
from tests.benchmarks.smoke import assert_finite, run_benchmark


def test_score_counts_speech_gender_and_turn_boundaries():
    truth = [recordings.Segment(0.0, 1.0, "pause"), recordings.Segment(1.0, 4.0, "male"),
             recordings.Segment(4.0, 5.0, "pause"), recordings.Segment(5.0, 8.0, "female")]
    rec = recordings.Recording(np.zeros(8 * recordings.SAMPLE_RATE, np.float32), truth)
    found = [segments.Segment(0.0, 1.2, segments.SILENCE), segments.Segment(1.2, 4.0, segments.SPEECH, "male", 0.1),
             segments.Segment(4.0, 5.0, segments.SILENCE), segments.Segment(5.0, 8.0, segments.SPEECH, "male", 0.4)]
    score = bench.score(rec, found)
    # Speech: 5.8 s found, 6 s true, 5.8 s in common -> F1 = 11.6 / 11.8, recall 5.8 / 6, precision 1.
    assert score["speech_f1"] == pytest.approx(11.6 / 11.8, abs=2e-3)
    assert score["speech_recall"] == pytest.approx(5.8 / 6, abs=2e-3) and score["speech_precision"] == 1.0
    # Gender: the male turn's 2.8 s found right, the female turn called male: 2.8 of 6 s; 2.8 of 5.8 s detected.
    assert score["gender_accuracy"] == pytest.approx(2.8 / 6, abs=2e-3)
    assert score["gender_accuracy_detected"] == pytest.approx(2.8 / 5.8, abs=2e-3)
    assert score["turns_within_0.5s"] == 1.0  # both turns' ends within 0.5 s of a found boundary
    # At the change (4.5 s, +-1 s): 3.5-4.0 s male and right, 5.0-5.5 s female called male.
    assert score["gender_accuracy_at_changes"] == pytest.approx(0.5, abs=2e-2)


@pytest.mark.slow
def test_segments_benchmark_runs_on_synthetic_voices(tmp_path):
    report = run_benchmark("segments", "--recordings=1", "--seconds=20", "--methods=energy",
                           f"--data_dirs={tmp_path / 'absent'}", "--sweep=turn_switch_prob=0.5,0.01")
    assert report["speech"].startswith("synthetic voices")
    overall = report["methods"]["energy"]["overall"]
    assert set(report["methods"]["energy"]["conditions"]) == set(bench.CONDITIONS)
    assert 0.0 <= overall["speech_f1"] <= 1.0 and overall["realtime_factor"] > 0
    assert set(report["oracle_gender_accuracy"]) == set(bench.CONDITIONS)
    assert_finite(overall, ["speech_f1", "speech_recall", "speech_precision", "gender_accuracy", "gender_accuracy_detected", "turns_within_0.5s",
                            "realtime_factor", "cold_start_s"])
    sweep = report["sweeps"]["turn_switch_prob"]
    assert set(sweep) == {"turn_switch_prob=0.5", "turn_switch_prob=0.01"}
    assert_finite(sweep["turn_switch_prob=0.01"], ["gender_accuracy", "gender_accuracy_at_changes"])
