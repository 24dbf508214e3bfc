"""benchmarks.inference on generated clips with the shipped model: real-time factor, cold starts, sizes."""

import pytest

from tests.benchmarks.smoke import assert_finite, run_benchmark


@pytest.mark.slow
def test_inference_benchmark_runs_on_generated_clips(bench_corpus):
    result = run_benchmark("inference", "--clips=4", "--launches=1", f"--data={bench_corpus}")
    assert result["clips"] == 4 and result["failed_whole_file"] == 0
    # Silero misses some generated voices (no_speech); the figure counts the clips it judged.
    assert result["failed"] < result["clips"]
    assert_finite(result, ["rtf_one_core", "rtf_one_core_whole_file", "cold_start_predict_s",
                           "cold_start_predict_whole_file_s", "cold_start_tf_saved_model_s", "litert_bytes",
                           "saved_model_bytes"])
    assert result["default"]["audio_s"] >= (4 - result["failed"]) * 3 - 1  # generated clips last 3-6 s
    assert result["litert_bytes"] > 0 and result["saved_model_bytes"] > 0
    for mode in ("default", "default_unbatched", "whole_file", "segments"):
        assert_finite(result[mode], ["cpu_ms_per_clip", "x_floor", "rtf_one_core"])
        assert result[mode]["x_floor"] > 0
    assert result["default"]["failed"] == result["default_unbatched"]["failed"]  # batching changes no answer
    assert_finite(result["default_stages_ms_per_clip"], ["decode_and_resample", "silero_batched", "litert_model"])
