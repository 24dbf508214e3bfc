"""benchmarks.input_pipeline on generated clips: the seed's Sequence, the input function, training."""

import pytest

from tests.benchmarks.smoke import assert_finite, run_benchmark

RATES = ["seed_sequence_blocks_per_s", "input_fn_log_mel_blocks_per_s", "input_fn_log_mel_cached_blocks_per_s",
         "input_fn_stft_seed_blocks_per_s", "cnn_training_blocks_per_s"]


@pytest.mark.slow
def test_input_pipeline_benchmark_runs_on_generated_clips(bench_corpus):
    result = run_benchmark("input_pipeline", "--clips=8", f"--data={bench_corpus}", "--seed_batches=1",
                           "--input_batches=5", "--train_steps=3")
    assert result["clips"] == 8
    assert_finite(result, RATES + ["input_vs_seed_sequence", "input_cached_vs_seed_sequence",
                                   "input_stft_vs_seed_sequence", "input_vs_training"])
    assert all(result[k] > 0 for k in RATES)
    assert isinstance(result["goal_5x_training_met"], bool)
