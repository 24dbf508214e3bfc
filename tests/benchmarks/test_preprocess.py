"""benchmarks.preprocess on generated clips: decode floor, seed loop and the job, side by side."""

import pytest

from tests.benchmarks.smoke import assert_finite, run_benchmark


@pytest.mark.slow
def test_preprocess_benchmark_runs_on_generated_clips(bench_corpus):
    result = run_benchmark("preprocess", "--clips=12", f"--data={bench_corpus}",
                           "--job_flag=--direct_running_mode=in_memory", "--job_flag=--direct_num_workers=1")
    assert result["clips"] == 12 and bench_corpus in result["source"]
    for row in ("decode_floor", "seed_loop", "job", "job_marginal"):
        assert_finite(result[row], ["clips_per_s", "cpu_s_per_clip", "audio_s_per_s"])
    assert result["seed_loop"]["blocks"] > 0
    assert 8 < result["job"]["clips"] <= 12  # the start-up run decodes 8: the full run must decode more
    assert_finite(result["ratios"], ["job_cpu_per_clip_vs_decode_floor", "job_marginal_cpu_per_clip_vs_decode_floor",
                                     "job_wall_throughput_vs_seed_loop", "job_marginal_throughput_vs_seed_loop"])
    assert_finite(result["job_cpu_per_clip_by_stage"], ["read_decode", "resample", "features",
                                                        "beam_and_serialization"])
