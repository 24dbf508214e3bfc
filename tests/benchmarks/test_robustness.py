"""benchmarks.robustness: what each condition does to a waveform, and a run with the shipped model."""

import numpy as np
import pytest

from benchmarks import baselines, robustness
from tests.benchmarks.smoke import assert_finite, run_benchmark
from tests.benchmarks.test_baselines import pulse_train

RATE = baselines.RATE


def test_conditions_change_the_waveform_as_named():
    wave = pulse_train(150.0, seconds=1.5)
    conds = robustness.conditions(RATE, np.random.default_rng(0))
    changed = {name: change(wave) for name, change in conds.items()}
    assert np.array_equal(changed["clean"], wave)
    assert baselines.median_f0(changed["higher"]) == pytest.approx(150 * 1.08, rel=0.03)
    assert baselines.median_f0(changed["lower"]) == pytest.approx(150 * 0.92, rel=0.03)
    assert np.sqrt(np.mean(changed["quiet"] ** 2)) == pytest.approx(np.sqrt(np.mean(wave ** 2)) * 10 ** (-1.5), rel=1e-3)
    assert all(w.dtype == np.float32 and np.all(np.isfinite(w)) for w in changed.values())


def test_telephone_and_muffled_take_the_highs_away():
    noise = np.random.default_rng(1).normal(scale=0.1, size=RATE).astype(np.float32)  # flat spectrum
    conds = robustness.conditions(RATE, np.random.default_rng(0))
    high = slice(5000, None)  # rfft bins above 5 kHz (1 s: 1 Hz bins)
    energy = {name: np.abs(np.fft.rfft(conds[name](noise)))[high].sum() for name in ("clean", "telephone", "muffled")}
    assert energy["telephone"] < 0.01 * energy["clean"]  # band-limited to 4 kHz
    assert energy["muffled"] < 0.5 * energy["clean"]


def test_by_attribute_gives_recall_per_gender_in_each_cell():
    p = {("clean", "m"): [0.9, 0.1, np.nan, 0.8], ("quiet", "m"): [0.2, 0.1, 0.3, 0.9]}
    labels = np.array([1, 0, 0, 1])
    cells = robustness.by_attribute(p, labels, {"emotion": ["sad", "sad", "angry", "angry"]})["emotion"]
    assert cells["sad"]["clean"]["m"] == {"clips": 2, "balanced_accuracy": 1.0, "male_recall": 1.0,
                                          "female_recall": 1.0}
    assert cells["angry"]["clean"]["m"]["male_recall"] == 0.0  # no answer counts as wrong
    assert cells["sad"]["quiet"]["m"]["female_recall"] == 0.0 and cells["angry"]["quiet"]["m"]["male_recall"] == 1.0


@pytest.mark.slow
def test_robustness_benchmark_runs_with_the_shipped_model(log_mel_data, tmp_path):
    from benchmarks import common

    clips, _ = common.held_out_clips(log_mel_data, "train")
    by_locale = {}
    for i, clip_id in enumerate(sorted(clips)):
        locale, path = clip_id.split("/", 1)
        by_locale.setdefault(locale, []).append(f"{path}\t{('angry', 'calm')[i % 2]}\n")
    tsvs = []
    for locale, rows in by_locale.items():
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "emotion.tsv").write_text("path\temotion\n" + "".join(rows))
        tsvs.append(f"--attributes={tmp_path / locale / 'emotion.tsv'}")
    result = run_benchmark("robustness", f"--data_dir={log_mel_data}", "--split=train",
                           "--model=shipped=model/pretrained", *tsvs)
    emotion = result["by_attribute"]["emotion"]
    assert set(emotion) == {"angry", "calm"}
    assert sum(emotion[v]["clean"]["shipped"]["clips"] for v in emotion) == result["clips"]
    assert set(emotion["angry"]) == set(robustness.conditions(RATE, np.random.default_rng(0)))
    assert result["clips"] > 0
    conds = set(robustness.conditions(RATE, np.random.default_rng(0)))
    assert set(result["balanced_clip_accuracy"]) == conds
    for name in conds:
        assert_finite(result["balanced_clip_accuracy"][name], ["shipped"])
        assert 0 <= result["balanced_clip_accuracy"][name]["shipped"] <= 1
    assert_finite(result["mean_other_conditions"], ["shipped"])
    assert set(result["unusable_clips"]) == conds
