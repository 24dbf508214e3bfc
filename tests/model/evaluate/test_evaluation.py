"""Metrics on hand-made predictions, and `model.evaluate` on a trained run.

The scikit-learn-backed metrics are checked against the hand-written implementation they replaced
(``_legacy_*`` below) on seeded random predictions with ties, one-gender and empty inputs.
"""

import json
import math
import os
import re

import numpy as np
import pytest

from model.evaluate import evaluate_lib, evaluation
from model.train import loading
from pipeline import features, inputs, metadata
from pipeline.metadata import Normalizer
from tests.helpers import run_module

RANDOM_CASES = 120


# --- legacy reference, kept to prove sklearn gives the same figures --------------------------------------------
# The hand-written metrics model/evaluation.py had before it called scikit-learn, copied unchanged.

def _legacy_roc_curve(p, y):
    order = np.argsort(-p, kind="stable")
    y_sorted = y[order]
    tps = np.concatenate([[0], np.cumsum(y_sorted)])
    fps = np.concatenate([[0], np.cumsum(1 - y_sorted)])
    return fps / max(fps[-1], 1), tps / max(tps[-1], 1)


def _legacy_roc_auc(p, y):
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = _legacy_average_ranks(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _legacy_average_ranks(x):
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


def _legacy_balanced_accuracy(p, y, threshold=0.5):
    predicted = (p >= threshold).astype(int)
    recalls = [float(np.mean(predicted[y == label] == label)) for label in (features.MALE, features.FEMALE)
               if np.any(y == label)]
    return float(np.mean(recalls)) if recalls else float("nan")


def _legacy_binary_metrics(p, y, threshold=0.5):
    predicted = (p >= threshold).astype(int)
    confusion = [[int(np.sum((y == t) & (predicted == q))) for q in (0, 1)] for t in (0, 1)]
    per_gender = {}
    for label, name in enumerate(features.GENDER_NAMES):
        tp = confusion[label][label]
        per_gender[name] = {
            "precision": tp / max(1, sum(confusion[t][label] for t in (0, 1))),
            "recall": tp / max(1, sum(confusion[label])),
            "count": int(sum(confusion[label])),
        }
    return {
        "count": int(len(y)),
        "accuracy": float(np.mean(predicted == y)) if len(y) else float("nan"),
        "balanced_accuracy": _legacy_balanced_accuracy(p, y, threshold),
        "roc_auc": _legacy_roc_auc(p, y),
        "confusion": confusion,
        **per_gender,
    }


def _legacy_group_metrics(clips):
    out = {}
    for group, values in clips.groups.items():
        out[group] = {}
        for value in sorted(set(values)):
            mask = values == value
            p, y = clips.p_female[mask], clips.labels[mask]
            out[group][str(value)] = {
                "clips": int(mask.sum()),
                "male": int(np.sum(y == 0)),
                "female": int(np.sum(y == 1)),
                "accuracy": float(np.mean((p >= 0.5) == y)),
                "balanced_accuracy": _legacy_balanced_accuracy(p, y),
                "male_recall": float(np.sum((p < 0.5) & (y == 0)) / np.sum(y == 0)) if np.any(y == 0) else None,
                "female_recall": float(np.sum((p >= 0.5) & (y == 1)) / np.sum(y == 1)) if np.any(y == 1) else None,
            }
    return out


def _legacy_evaluate_predictions(pred):
    clips = evaluation.clip_level(pred)
    return {
        "block": _legacy_binary_metrics(pred.p_female, pred.labels),
        "clip": _legacy_binary_metrics(clips.p_female, clips.labels),
        "speakers": int(len(set(pred.speaker_ids))),
        "by_group": _legacy_group_metrics(clips),
    }


# --- generated predictions ---------------------------------------------------------------------------------------

def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (p_female float32, labels int) of one of several shapes: the kind cycles with the seed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
    # Informative scores (females shifted up, so AUC and accuracies are neither 0 nor 1), ties unlikely.
    p = (1 / (1 + np.exp(-rng.normal(1.6 * y - 0.8, 1.0)))).astype(np.float32)
    kind = seed % 6
    if kind == 1:  # coarse scores: many ties, some exactly at the 0.5 threshold
        p = np.round(p, 1).astype(np.float32)
    elif kind == 2:  # saturated scores, as a confident float32 sigmoid gives: ties at 0 and 1
        p = np.where(rng.random(n) < 0.5, np.round(p), p).astype(np.float32)
    elif kind == 3:  # one gender only
        y = np.full(n, seed // 6 % 2)
    elif kind == 4:  # every score on one side of the threshold
        p = (p * 0.49).astype(np.float32)
    return p, y


CASES = [_random_case(seed) for seed in range(RANDOM_CASES)]
EDGE_CASES = [
    (np.array([], np.float32), np.array([], int)),
    (np.array([0.7], np.float32), np.array([1])),
    (np.array([0.5, 0.5], np.float32), np.array([0, 1])),
    (np.array([0.2, 0.9], np.float32), np.array([0, 0])),
]


def _has_ties(p: np.ndarray) -> bool:
    return len(np.unique(p)) < len(p)


def _assert_same_report(new, old, where=""):
    """Same keys and layout; ints exactly; floats to 1e-12 (NaN equals NaN)."""
    assert type(new) is type(old) or isinstance(new, float) and isinstance(old, float), where
    if isinstance(old, dict):
        assert list(new) == list(old), where
        for key in old:
            _assert_same_report(new[key], old[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            _assert_same_report(a, b, f"{where}[{i}]")
    elif isinstance(old, float):
        assert (math.isnan(new) and math.isnan(old)) or new == pytest.approx(old, rel=1e-12, abs=1e-12), where
    else:
        assert new == old, where


@pytest.mark.parametrize("p, y", CASES + EDGE_CASES)
def test_sklearn_metrics_equal_the_hand_written_ones(p, y):
    new, old = evaluation.binary_metrics(p, y), _legacy_binary_metrics(p, y)
    _assert_same_report(new, old)
    _assert_same_report(evaluation.roc_auc(p, y), _legacy_roc_auc(p, y))
    _assert_same_report(evaluation.balanced_accuracy(p, y, 0.3), _legacy_balanced_accuracy(p, y, 0.3))


@pytest.mark.parametrize("p, y", CASES + EDGE_CASES)
def test_roc_curve_is_the_hand_written_polyline(p, y):
    fpr, tpr = evaluation.roc_curve(p, y)
    old_fpr, old_tpr = _legacy_roc_curve(p, y)
    if not _has_ties(p):
        # One point per block, from (0, 0): the same arrays as before.
        np.testing.assert_array_equal(fpr, old_fpr)
        np.testing.assert_array_equal(tpr, old_tpr)
    else:
        # Tied scores are one threshold: the curve keeps the old points at the end of each run of ties and draws
        # the straight segment between them (the old staircase inside a tie followed the file order).
        ends = np.concatenate([[0], np.cumsum(np.unique(-p, return_counts=True)[1])])
        np.testing.assert_array_equal(fpr, old_fpr[ends])
        np.testing.assert_array_equal(tpr, old_tpr[ends])
    assert (fpr[0], tpr[0]) == (0, 0)
    if len(np.unique(y)) == 2:
        assert (fpr[-1], tpr[-1]) == (1, 1)
        # The drawn curve's area is the AUC in its legend, ties counting half.
        assert np.trapezoid(tpr, fpr) == pytest.approx(_legacy_roc_auc(p, y), abs=1e-12)


def test_random_cases_cover_ties_one_gender_and_extremes():
    # The comparisons above mean something only if the generator produced these shapes.
    assert sum(_has_ties(p) for p, _ in CASES) >= RANDOM_CASES // 3
    assert sum(not _has_ties(p) for p, _ in CASES) >= RANDOM_CASES // 3
    assert sum(len(np.unique(y)) == 1 for _, y in CASES) >= RANDOM_CASES // 6
    assert any(np.any(p == 0.5) for p, _ in CASES) and any(np.all(p < 0.5) for p, _ in CASES)


def _random_predictions(seed: int) -> evaluation.SplitPredictions:
    rng = np.random.default_rng(seed)
    clip_names = [f"{rng.choice(['en', 'de', 'fr'])}/c{i}.mp3" for i in range(60)]
    clip_gender = rng.integers(0, 2, len(clip_names))
    clip_of_block = rng.integers(0, len(clip_names), 500)
    labels = clip_gender[clip_of_block]
    p = np.clip(rng.normal(0.3 + 0.4 * labels, 0.3), 0, 1).astype(np.float32)
    p[rng.random(500) < 0.1] = 1.0  # saturated blocks: ties
    # Ages and accents per clip; "teens" only for male clips (a one-gender group), "" blank.
    ages = np.where(clip_gender == 0, rng.choice(["teens", "twenties", ""], len(clip_names)), "thirties")
    accents = rng.choice(["", "us", "uk", "scot"], len(clip_names))
    return evaluation.SplitPredictions(p, labels, np.array(clip_names)[clip_of_block],
                                       np.array([f"s{c % 17}" for c in clip_of_block]),
                                       ages[clip_of_block], accents[clip_of_block])


@pytest.mark.parametrize("seed", range(5))
def test_evaluate_predictions_equals_the_hand_written_report(seed):
    pred = _random_predictions(seed)
    report = evaluation.evaluate_predictions(pred)
    assert any(m["male"] == 0 or m["female"] == 0 for m in report["by_group"]["age"].values())
    _assert_same_report(report, _legacy_evaluate_predictions(pred))
    assert json.loads(json.dumps(report)) == report  # plain JSON types


def test_empty_input_gives_nan_and_zero_counts():
    m = evaluation.binary_metrics(np.array([], np.float32), np.array([], int))
    assert m["count"] == 0 and m["confusion"] == [[0, 0], [0, 0]]
    assert math.isnan(m["accuracy"]) and math.isnan(m["balanced_accuracy"]) and math.isnan(m["roc_auc"])
    assert m["male"] == {"precision": 0.0, "recall": 0.0, "count": 0}


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7, 0.95])
    m = evaluation.binary_metrics(p, y)
    assert m["confusion"] == [[2, 1], [1, 4]]
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["female"]["precision"] == pytest.approx(4 / 5) and m["female"]["recall"] == pytest.approx(4 / 5)
    assert m["male"]["precision"] == pytest.approx(2 / 3) and m["male"]["recall"] == pytest.approx(2 / 3)
    assert m["male"]["count"] == 3 and m["female"]["count"] == 5
    # AUC: (female, male) pairs ordered correctly: 14 of 15 (only 0.4 < 0.6 is not).
    assert m["roc_auc"] == pytest.approx(14 / 15)


def test_auc_ties_count_half_and_roc_ends_at_corners():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.5, 0.5, 0.2, 0.9])
    assert evaluation.roc_auc(p, y) == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    fpr, tpr = evaluation.roc_curve(p, y)
    # 0.9 (female), then the tie at 0.5 (one of each) as one diagonal step, then 0.2 (male).
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    assert np.isnan(evaluation.roc_auc(p[y == 1], y[y == 1]))
    # One gender only: the missing rate is 0, not NaN (the plot draws the line along the axis).
    fpr, tpr = evaluation.roc_curve(p[y == 1], y[y == 1])
    np.testing.assert_allclose(fpr, [0, 0, 0])
    np.testing.assert_allclose(tpr, [0, 0.5, 1])


def test_balanced_accuracy_over_the_genders_present():
    y = np.array([0, 0, 0, 0])
    assert evaluation.balanced_accuracy(np.array([0.1, 0.2, 0.7, 0.9]), y) == pytest.approx(0.5)
    assert evaluation.balanced_accuracy(np.array([0.6, 0.6]), np.array([1, 1])) == 1.0
    assert math.isnan(evaluation.balanced_accuracy(np.array([]), np.array([], int)))


def test_clip_level_averages_blocks_and_groups_by_locale_age_accent():
    pred = evaluation.SplitPredictions(
        p_female=np.array([0.9, 0.7, 0.2, 0.4, 0.8]), labels=np.array([1, 1, 0, 0, 0]),
        clip_ids=np.array(["en/a.mp3", "en/a.mp3", "de/b.mp3", "de/b.mp3", "de/c.mp3"]),
        speaker_ids=np.array(["s1", "s1", "s2", "s2", "s3"]), ages=np.array(["twenties"] * 2 + [""] * 3),
        accents=np.array([""] * 5))
    clips = evaluation.clip_level(pred)
    assert clips.clip_ids.tolist() == ["de/b.mp3", "de/c.mp3", "en/a.mp3"]
    np.testing.assert_allclose(clips.p_female, [0.3, 0.8, 0.8])
    groups = evaluation.group_metrics(clips)
    assert groups["locale"]["de"] == {"clips": 2, "male": 2, "female": 0, "accuracy": 0.5, "balanced_accuracy": 0.5,
                                      "male_recall": 0.5, "female_recall": None}
    assert groups["locale"]["en"]["female_recall"] == 1.0 and groups["locale"]["en"]["male_recall"] is None
    assert groups["age"]["(blank)"]["clips"] == 2 and groups["accent"]["(blank)"]["clips"] == 3
    report = evaluation.evaluate_predictions(pred)
    assert report["speakers"] == 3 and report["clip"]["count"] == 3 and report["block"]["count"] == 5


@pytest.mark.slow
def test_evaluate_writes_report_and_plots(trained_run, log_mel_data):
    report = evaluate_lib.evaluate(trained_run, log_mel_data, features.VALIDATION)
    meta = metadata.read_metadata(log_mel_data)
    assert report["block"]["count"] == meta.blocks(features.VALIDATION)
    assert report["clip"]["count"] == sum(meta.splits[features.VALIDATION].clips.values())
    assert sum(map(sum, report["clip"]["confusion"])) == report["clip"]["count"]
    assert set(report["by_group"]) == {"locale", "age", "accent"}
    assert set(report["by_group"]["locale"]) <= {"en", "de"}
    for path in report["files"].values():
        assert os.path.getsize(path) > 0
    on_disk = json.load(open(report["files"]["report"]))
    assert on_disk["clip"]["accuracy"] == report["clip"]["accuracy"]

    # The figures, recomputed here with plain numpy from the model's own predictions.
    model, feature_set, _ = loading.load_block_model(trained_run)
    pred = evaluation.predict_split(model, log_mel_data, features.VALIDATION, feature_set,
                                    Normalizer.from_metadata(meta))
    clip_ids, inverse = np.unique(pred.clip_ids, return_inverse=True)
    clip_p = np.bincount(inverse, weights=pred.p_female) / np.bincount(inverse)
    clip_y = np.zeros(len(clip_ids), int)
    clip_y[inverse] = pred.labels
    for level, p, y in (("block", pred.p_female, pred.labels), ("clip", clip_p, clip_y)):
        called = (p >= 0.5).astype(int)
        confusion = [[int(np.sum((y == t) & (called == c))) for c in (0, 1)] for t in (0, 1)]
        recalls = [np.mean(called[y == g] == g) for g in (0, 1) if np.any(y == g)]
        assert report[level]["confusion"] == confusion
        assert report[level]["accuracy"] == pytest.approx(np.mean(called == y), abs=1e-12)
        assert report[level]["balanced_accuracy"] == pytest.approx(np.mean(recalls), abs=1e-12)
        assert report[level]["male"]["count"] == int(np.sum(y == 0))

    summary = evaluate_lib.format_summary(report)
    clip = report["clip"]
    assert (f"{clip['count']} clips, {report['block']['count']} blocks, {report['speakers']} speakers"
            in summary)
    assert f"clip    {clip['accuracy']:>10.4f}{clip['balanced_accuracy']:>10.4f}" in summary
    (mm, mf), (fm, ff) = clip["confusion"]
    assert f"male {mm}/{mf}, female {fm}/{ff}" in summary


@pytest.mark.slow
def test_evaluate_breaks_results_down_by_an_attribute_tsv(trained_run, log_mel_data, tmp_path):
    meta = metadata.read_metadata(log_mel_data)
    model, feature_set, _ = loading.load_block_model(trained_run)
    clips = evaluation.clip_level(evaluation.predict_split(model, log_mel_data, features.VALIDATION, feature_set,
                                                           Normalizer.from_metadata(meta)))
    # An emotion per validation clip, in a TSV in a folder named as the clip's locale (its clip id's prefix).
    emotion = {c: ("angry", "calm")[i % 2] for i, c in enumerate(clips.clip_ids)}
    tsvs = []
    for locale in sorted({c.split("/", 1)[0] for c in clips.clip_ids}):
        (tmp_path / locale).mkdir()
        rows = [f"{c.split('/', 1)[1]}\t{e}\tspk" for c, e in emotion.items() if c.startswith(locale + "/")]
        (tmp_path / locale / "emotion.tsv").write_text("path\temotion\tspeaker\n" + "\n".join(rows) + "\n")
        tsvs.append(str(tmp_path / locale / "emotion.tsv"))
    report = evaluate_lib.evaluate(trained_run, log_mel_data, features.VALIDATION, attribute_tsvs=tuple(tsvs))
    cells = report["by_group"]["emotion"]
    assert set(cells) == set(emotion.values()) and "speaker" not in report["by_group"]
    for value, cell in cells.items():
        mask = np.array([emotion[c] == value for c in clips.clip_ids])
        p, y = clips.p_female[mask], clips.labels[mask]
        assert cell["clips"] == int(mask.sum()) and cell["male"] == int(np.sum(y == 0))
        for key, g in (("male_recall", 0), ("female_recall", 1)):
            expected = float(np.mean((p[y == g] >= 0.5) == g)) if np.any(y == g) else None
            assert cell[key] == (pytest.approx(expected) if expected is not None else None)
    summary = evaluate_lib.format_summary(report)
    assert "by emotion:" in summary and "  angry" in summary and "  calm" in summary


@pytest.mark.slow
def test_evaluate_cli_and_its_errors(trained_run, log_mel_data, stft_seed_data, tmp_path):
    args = ["model.evaluate", f"--model_dir={trained_run}", "--split=validation"]
    ok = run_module(*args, f"--data_dir={log_mel_data}")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "balanced" in ok.stdout and os.path.exists(os.path.join(trained_run, "eval", "validation.json"))
    mismatch = run_module(*args, f"--data_dir={stft_seed_data}")
    assert mismatch.returncode != 0 and "num_bins: data 513, model 64" in mismatch.stderr
    not_a_run = run_module("model.evaluate", f"--model_dir={tmp_path}", f"--data_dir={log_mel_data}")
    assert not_a_run.returncode != 0 and "config.json: missing" in not_a_run.stderr


@pytest.mark.slow
def test_empty_split_is_a_clear_error(trained_run, log_mel_data, tmp_path):
    # The job's output with nothing written for the test split (whether the generated corpus puts a speaker
    # there depends on the split's hashes, so the empty split is made here).
    meta = dict(metadata.read_metadata(log_mel_data).raw)
    meta["splits"] = dict(meta["splits"])
    meta["splits"][features.TEST] = {key: {name: 0 for name in features.GENDER_NAMES}
                                     for key in ("clips", "blocks", "speakers", "audio_seconds")}
    (tmp_path / features.METADATA_FILENAME).write_text(json.dumps(meta))
    assert metadata.read_metadata(str(tmp_path)).blocks(features.TEST) == 0
    with pytest.raises(ValueError, match="the test split is empty"):
        evaluate_lib.evaluate(trained_run, str(tmp_path), features.TEST)


@pytest.mark.slow
def test_a_truncated_shard_is_one_line_naming_it(trained_run, log_mel_data, tmp_path):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(log_mel_data, copy)
    shard = sorted(copy.glob(f"{features.VALIDATION}-*{features.SHARD_SUFFIX}"))[0]
    os.truncate(shard, shard.stat().st_size - 100)
    with pytest.raises(inputs.ShardError, match=re.escape(f"{shard}: truncated record at byte")):
        evaluate_lib.evaluate(trained_run, str(copy), features.VALIDATION)
    proc = run_module("model.evaluate", f"--model_dir={trained_run}", f"--data_dir={copy}", "--split=validation")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"evaluate: error: corrupt TFRecord shard(s): {shard}: truncated record at byte "), last
