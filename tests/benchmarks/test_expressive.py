"""benchmarks.expressive on a generated corpus with an emotion.tsv: cells by emotion and gender, goals checked."""

import os

import numpy as np
import pytest

from benchmarks import expressive
from tests.benchmarks.smoke import run_benchmark


def test_cells_count_unanswered_clips_as_wrong_and_split_recall_by_gender():
    p = np.array([0.9, np.nan, 0.2, 0.1, np.nan, 0.7])
    labels = np.array([1, 1, 0, 0, 0, 0])
    emotions = ["angry", "angry", "angry", "sad", "sad", "sad"]
    r = expressive.cells(p, labels, [f"x/{i}" for i in range(6)], emotions)
    assert r["clips"] == 6 and r["unanswered"] == 2
    assert r["by_emotion"]["angry"]["female_recall"] == 0.5 and r["by_emotion"]["angry"]["male_recall"] == 1.0
    assert r["by_emotion"]["sad"]["male_recall"] == pytest.approx(1 / 3) and r["by_emotion"]["sad"]["female_recall"] is None
    assert r["balanced_accuracy"] == pytest.approx((2 / 4 + 1 / 2) / 2)
    met = expressive.goals({"am-ased": r})
    assert met == {"am-ased_balanced_0.85": False, "am-ased_angry_male_recall_0.85": True}
    calm = {"validation": {"balanced_accuracy": 0.99}, "test": {"balanced_accuracy": 0.97}}
    assert expressive.goals({"am-ased": r}, calm)["calm_test_0.975"] is False
    calm["test"]["balanced_accuracy"] = 0.975
    assert expressive.goals({"am-ased": r}, calm)["calm_test_0.975"] is True


@pytest.mark.slow
def test_expressive_benchmark_runs_on_a_generated_corpus(bench_corpus, log_mel_data, tmp_path):
    locale = os.path.join(bench_corpus, "bench")
    with open(os.path.join(locale, "validated.tsv"), encoding="utf-8") as f:
        paths = [line.split("\t")[1] for line in f.read().splitlines()[1:]]
    emotion_tsv = tmp_path / "expressive" / "bench"
    emotion_tsv.parent.mkdir()
    os.symlink(locale, emotion_tsv)  # the corpus under another root, with its emotion.tsv beside validated.tsv
    emotions = ("angry", "neutral")
    try:
        with open(os.path.join(locale, "emotion.tsv"), "w", encoding="utf-8") as f:
            f.write("path\temotion\tspeaker\n" + "".join(f"{p}\t{emotions[i % 2]}\ts\n" for i, p in enumerate(paths)))
        result = run_benchmark("expressive", f"--expressive_dir={tmp_path / 'expressive'}", "--nopeer",
                               "--model=a=model/pretrained", "--model=b=model/pretrained", "--vad=none",
                               f"--calm_data_dir={log_mel_data}", "--calm_splits=train")
    finally:
        os.remove(os.path.join(locale, "emotion.tsv"))
    a, b = result["results"]["a"]["bench"], result["results"]["b"]["bench"]
    assert a == b  # the same model twice: the same figures
    assert a["clips"] == len(paths) and set(a["by_emotion"]) == set(emotions)
    assert sum(c["clips"] for c in a["by_emotion"].values()) == len(paths)
    # "bench" has no balanced-accuracy goal; the male-recall goal holds in every corpus with angry clips.
    assert 0 <= a["balanced_accuracy"] <= 1
    assert list(result["goals"]["a"]) == ["bench_angry_male_recall_0.85"]  # no "test" split scored: no calm goal
    # The calm speakers of a preprocessed directory, scored for each model the same way.
    from benchmarks import common

    train_clips, _ = common.held_out_clips(log_mel_data, "train")
    assert result["calm"]["a"] == result["calm"]["b"]
    assert result["calm"]["a"]["train"]["clips"] == len(train_clips) > 0
    assert 0 <= result["calm"]["a"]["train"]["balanced_accuracy"] <= 1


def test_expressive_benchmark_skips_clearly_without_the_corpora(tmp_path):
    result = run_benchmark("expressive", f"--expressive_dir={tmp_path / 'absent'}", "--nopeer")
    assert "skipped" in result
