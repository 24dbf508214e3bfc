"""benchmarks.scale: the replicated corpus, and a run on a generated corpus."""

import os

import pytest

from benchmarks import scale
from pipeline import common_voice as cv
from tests.benchmarks.smoke import assert_finite, run_benchmark


def test_replicated_corpus_has_new_speakers_and_the_same_clips(corpus_dir, tmp_path):
    corpus = scale.labelled_rows(corpus_dir, 1.0)
    root = scale.replicate(corpus, 3, str(tmp_path / "x3"))
    locales = sorted(os.listdir(root))
    assert len(locales) == 3 * len(corpus)
    speakers = set()
    for locale in locales:
        with open(os.path.join(root, locale, cv.VALIDATED_TSV), encoding="utf-8", newline="") as f:
            clips = list(cv.parse_validated_tsv(f, os.path.join(root, locale)))
        good = [c for c in clips if isinstance(c, cv.Clip)]
        original = os.path.join(corpus_dir, locale.rsplit("_x", 1)[0], cv.CLIPS_DIR)
        assert good and all(os.path.exists(c.audio_path) == os.path.exists(os.path.join(original,
                            os.path.basename(c.audio_path))) for c in good)
        speakers |= {c.speaker_id for c in good}
    one_copy = {c.speaker_id for c in cv.parse_validated_tsv(
        open(os.path.join(corpus_dir, "en", cv.VALIDATED_TSV), encoding="utf-8", newline=""),
        os.path.join(corpus_dir, "en")) if isinstance(c, cv.Clip)}
    assert len(speakers) >= 3 * len(one_copy)  # every copy speaks with new voices


@pytest.mark.slow
def test_scale_runs_on_a_generated_corpus(bench_corpus, tmp_path):
    # One size: the start-up run and the 1x run, on the in-process runner with every speaker in train (a dozen
    # speakers cannot be relied on to fill a validation and a test split with both genders).
    report = run_benchmark("scale", f"--corpus={bench_corpus}", "--factors=1", "--feature_sets=log_mel",
                           f"--work_dir={tmp_path}", "--job_flag=--split_fractions=1,0,0",
                           "--job_flag=--direct_running_mode=in_memory", "--job_flag=--direct_num_workers=1",
                           "--job_flag=--window_clips=8",  # two windows, and the one-pass run beside them
                           "--dask_workers=0")  # the Dask run's equality: tests/beam_jobs/test_dask_runner.py
    assert bench_corpus in report["source"] and report["factors"] == [1]
    log_mel = report["features"]["log_mel"]
    run = log_mel["runs"]["1"]
    assert_finite(run, ["clips_to_decode", "clips_decoded", "blocks_written", "wall_s", "cpu_s", "peak_rss_gb",
                        "peak_rss_launcher_gb", "peak_rss_largest_worker_gb", "peak_spill_gb"])
    assert run["peak_rss_launcher_gb"] <= run["peak_rss_gb"] and run["peak_spill_gb"] >= 0
    assert run["clips_to_decode"] == 12 and run["clips_decoded"] == 12  # every generated clip is good
    assert run["blocks_written"] > 0 and run["peak_rss_gb"] > 0.1  # TensorFlow alone takes more
    assert_finite(log_mel["ratios"], ["rss_big_vs_small", "peak_rss_gb", "steady_cpu_ms_per_clip", "steady_cpu_vs_floor"])
    assert_finite(log_mel["steady_cpu_ms_per_clip_by_stage"], ["read_decode", "resample", "features"])
    assert log_mel["decode_floor_ms_per_clip"] > 0
    assert log_mel["dask"] is None
    assert run["windows"] >= 2 and log_mel["single_pass"]["windows"] == 1
    assert log_mel["single_pass"]["clips_decoded"] == run["clips_decoded"]
