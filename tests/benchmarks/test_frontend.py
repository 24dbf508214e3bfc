"""benchmarks.frontend on generated clips: both front ends compared, the comparison able to fail."""

import dataclasses

import numpy as np
import pytest

from benchmarks import frontend as bench
from pipeline import audio, features
from tests.benchmarks.smoke import assert_finite, run_benchmark


def test_compare_finds_a_moved_front_end(generated_clips, monkeypatch):
    waves = [audio.read_audio_file(c.audio_path, 16000) for c in generated_clips[:3]]
    same = bench.compare(features.LOG_MEL, waves)
    assert same["mask_disagreements"] == 0 and same["max_abs_diff"] < 1e-2 and same["blocks"] > 0
    from pipeline import frontend

    real = frontend.waveform_to_blocks
    moved = dataclasses.replace(features.LOG_MEL, mel_upper_hz=7000.0)
    monkeypatch.setattr(frontend, "waveform_to_blocks", lambda w, fs: real(w, moved))
    assert bench.compare(features.LOG_MEL, waves)["max_abs_diff"] > 0.05


def test_digital_silence_of_ina_bands_is_left_out():
    fs = features.LOG_MEL_INA
    reference = np.zeros((2, *fs.block_shape), np.float32)
    reference[0, 0, 70] = np.log(1e-35)  # an ina band of digital silence
    reference[0, 0, 10] = np.log(1e-35)  # a log_mel bin: always compared
    keep = bench.audible(fs, reference)
    assert not keep[0, 0, 70] and keep[0, 0, 10] and keep.sum() == keep.size - 1


@pytest.mark.slow
def test_frontend_benchmark_runs_on_generated_clips(bench_corpus):
    result = run_benchmark("frontend", "--clips=3", f"--data={bench_corpus}", "--feature_sets=log_mel,ina_mel",
                           "--startup_runs=1")
    assert result["mask_disagreements"] == 0 and bench_corpus in result["source"]
    for name in ("log_mel", "ina_mel"):
        assert_finite(result["feature_sets"][name], ["max_abs_diff", "tensorflow_ms_per_clip", "numpy_ms_per_clip"])
        assert result["feature_sets"][name]["max_abs_diff"] < 1e-2
    assert 0 < result["startup_cpu_s"]["numpy"] < result["startup_cpu_s"]["tensorflow"]
