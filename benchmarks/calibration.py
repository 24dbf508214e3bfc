r"""Calibrated confidence for the shipped model, and what an "uncertain" answer buys (issue 11).

Classifies every validation and test clip of the shipped model's own data
split (speakers it never saw) with the LiteRT classifier, as ``predict``
does (one p_female per clip file, over the speech ``--vad`` detects). Each calibration method of
``model.predict.calibration`` is cross-validated on validation (folds by speaker,
averaged over several fold assignments); the method with the lowest
cross-validated ECE among those that do not lower the cross-validated
balanced accuracy is chosen, fitted on all of validation and judged on test: ECE before/after, balanced accuracy
before/after, and the coverage against error-rate curve (at confidence >= C:
the share of clips answered and the share of those wrong). The minimum
confidence is chosen on validation (the largest C that still answers
``--target_coverage`` of the clips) and reported on test against today's
error rate (every clip answered, uncalibrated), with the bound no monotone
calibration can pass on those clips (``best_two_sided``).

The expressive corpora (``<shared>/expressive/*``) are classified as an extra
evaluation only: nothing is fitted or chosen on them (their licences do not
allow training a shipped model).

Data: with ``--data_dir`` an output of ``beam_jobs.preprocess``. Otherwise,
when the shipped model's corpora are under ``--shared_dir``, the job is run
with the shipped model's own preprocessing flags
(``model/pretrained/training_data_metadata.json``) into ``--work_dir``, so
validation and test hold exactly the speakers it was not trained on (checked
against the metadata's split counts). Without them, a small generated corpus
is preprocessed and used (the smoke test).

Usage:
  python -m benchmarks.calibration [--data_dir=D] [--work_dir=W]
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported

import numpy as np
from absl import app, flags

from beam_jobs import sample_corpus
from beam_jobs.config import PreprocessConfig
from benchmarks import common
from model.calibrate import fitting
from model.predict import calibration, classifier, export_format, segments
from pipeline import attributes, features, split_clips

FLAGS = flags.FLAGS

SHIPPED_METADATA = os.path.join(export_format.PRETRAINED_DIR, features.TRAINING_METADATA_FILENAME)
# The corpora the shipped model may be trained on (shared/data/README.md); the expressive ones may not.
PERMITTED_CORPORA = ("commonvoice-6.1-sample", "duke-alphanumeric", "librispeech-sample")
EXPRESSIVE = "expressive"
# Printed curve: the C = 0.5, 0.6, ... with the 0.05 steps between, and 0.99.
CURVE_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10)) + (0.99,)
# Where the minimum confidence is searched (finer than the printed curve).
SEARCH_THRESHOLDS = tuple(round(0.5 + 0.005 * i, 3) for i in range(99))
# The generated fallback: conftest's corpus and job settings, known to put both genders in every split.
GENERATED_CORPUS = dict(speakers_per_gender=4, clips_per_speaker=2, seed=1, seconds_range=(1.5, 3.0),
                        sample_rate=16000)
GENERATED_JOB_ARGS = ("--split_fractions=0.5,0.25,0.25", "--max_blocks_per_clip=4", "--seed=11",
                      "--target_shard_mb=0.1", "--runner=DirectRunner", "--direct_running_mode=in_memory")
ECE_GOAL = 0.03
ERROR_RATIO_GOAL = 0.5  # error on answered clips at most half of today's


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    shared = os.path.normpath(os.path.join(common.REPO, "..", "shared", "data"))
    flags.DEFINE_string("data_dir", None, "An output of beam_jobs.preprocess (default: made in --work_dir).")
    flags.DEFINE_string("work_dir", None, "Where the preprocessed data is written when --data_dir is not "
                                          "given (default: a temporary directory, deleted at the end).")
    flags.DEFINE_string("shared_dir", shared, "Holds the shipped model's corpora and expressive/.")
    flags.DEFINE_string("expressive_dir", None, "Expressive corpora, evaluated only (default: "
                                                "<shared_dir>/expressive).")
    flags.DEFINE_integer("folds", 5, "Cross-validation folds on validation (by speaker).")
    flags.DEFINE_integer("cv_repeats", 10, "Cross-validation repeats (other fold assignments), averaged.")
    flags.DEFINE_integer("bins", 10, "ECE bins over confidence [0.5, 1].")
    flags.DEFINE_float("target_coverage", 0.9, "Share of clips the minimum confidence must still answer.")
    flags.DEFINE_enum("vad", "silero", list(segments.VERDICT_METHODS), "predict's --vad: each clip's "
                      f"verdict over the speech it detects, or '{segments.WHOLE_FILE}': over the whole clip.")
    flags.DEFINE_integer("workers", 2, "Files classified at once (one LiteRT interpreter each).")
    flags.DEFINE_integer("bootstrap", 1000, "Speaker bootstrap resamples for the test ECE's interval.")
    flags.DEFINE_integer("seed", 0, "Seeds the folds and the bootstrap.")


@dataclasses.dataclass
class Scored:
    """p_female, label and speaker of each clip that could be classified; what could not, by reason."""

    p: np.ndarray
    y: np.ndarray
    speakers: np.ndarray
    groups: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # name -> per-clip group value
    failed: dict[str, int] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Data


def shipped_preprocess_args(meta: dict) -> list[str]:
    """The shipped model's preprocessing flags, from its training data's metadata, less paths and --overwrite."""
    known = {f.name for f in dataclasses.fields(PreprocessConfig)} - {"cv_dirs", "output_dir", "overwrite",
                                                                       "feature_set"}
    args = []
    for key, value in sorted(meta["flags"].items()):
        if key not in known:
            continue
        if isinstance(value, bool):
            args.append(f"--{key}" if value else f"--no{key}")
        elif isinstance(value, list):
            args.append(f"--{key}=" + ",".join(str(v) for v in value))
        else:
            args.append(f"--{key}={value}")
    args.append(f"--features={meta['feature_set']['name']}")
    args.append(f"--block_frames={meta['feature_set']['block_frames']}")
    return args


def shipped_corpora(meta: dict, shared_dir: str) -> list[str] | None:
    """The shipped model's corpora under ``shared_dir``, or None when any is missing.

    Raises:
      ValueError: the metadata names a corpus outside ``PERMITTED_CORPORA``.
    """
    names = [os.path.basename(os.path.normpath(s)) for s in meta["sources"]]
    if not set(names) <= set(PERMITTED_CORPORA):
        raise ValueError(f"the shipped model's sources {names} include a corpus not in {PERMITTED_CORPORA}")
    paths = [os.path.join(shared_dir, name) for name in names]
    return paths if all(common.corpus_present(p) for p in paths) else None


def run_preprocess(cv_dirs: list[str], output_dir: str, args: list[str] | tuple[str, ...]) -> None:
    """``python -m beam_jobs.preprocess`` as a user runs it; its output is shown only if it fails."""
    cmd = [sys.executable, "-m", "beam_jobs.preprocess", *(f"--cv_dir={d}" for d in cv_dirs),
           f"--output_dir={output_dir}", "--overwrite", *args]
    print("running: python -m beam_jobs.preprocess " + " ".join(cmd[3:]), flush=True)
    start = time.time()
    proc = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": common.REPO})
    if proc.returncode != 0:
        raise RuntimeError(f"preprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"  done in {time.time() - start:.0f} s", flush=True)


def prepare_data(work_dir: str) -> tuple[str, str, dict | None]:
    """(data_dir, a description, the shipped metadata the split must match or None).

    Uses --data_dir, else runs the job on the shipped model's corpora, else on a generated corpus.
    """
    with open(SHIPPED_METADATA, encoding="utf-8") as f:
        shipped = json.load(f)
    if FLAGS.data_dir:
        return FLAGS.data_dir, f"--data_dir {FLAGS.data_dir}", None
    data_dir = os.path.join(work_dir, "data")
    corpora = shipped_corpora(shipped, FLAGS.shared_dir)
    if corpora is not None:
        run_preprocess(corpora, data_dir, shipped_preprocess_args(shipped))
        return data_dir, "the shipped model's corpora, preprocessed with its own flags", shipped
    corpus = os.path.join(work_dir, "corpus")
    sample_corpus.make_corpus(corpus, **GENERATED_CORPUS)
    run_preprocess([corpus], data_dir, GENERATED_JOB_ARGS)
    return data_dir, f"generated corpus ({FLAGS.shared_dir} absent)", None


def split_counts(data_dir: str) -> dict:
    with open(os.path.join(data_dir, "metadata.json"), encoding="utf-8") as f:
        splits = json.load(f)["splits"]
    return {s: {k: splits[s][k] for k in ("clips", "speakers")} for s in ("validation", "test")}


def held_out(data_dir: str, split: str) -> tuple[list[tuple[str, int, str]], list[str]]:
    """(clip id, label, speaker) of every clip of ``split``, and the job's sources."""
    clips, sources = split_clips.read_split_clips(data_dir, split)
    return [(c.clip_id, c.label, c.speaker_id) for c in clips], sources


def score(model: classifier.Classifier, items: list[tuple[str, int, str, dict]]) -> Scored:
    """Classifies (path, label, speaker, groups) items as predict does; files it cannot classify are counted."""
    p, y, speakers, groups, failed = [], [], [], {}, {}
    paths = [item[0] for item in items]
    verdicts = classifier.map_in_order(segments.file_classifier(model, FLAGS.vad), paths, FLAGS.workers, 32)
    for item, pred in zip(items, verdicts, strict=True):
        if pred.error is not None:
            failed[pred.reason] = failed.get(pred.reason, 0) + 1
            continue
        p.append(pred.p_female)
        y.append(item[1])
        speakers.append(item[2])
        for name, value in item[3].items():
            groups.setdefault(name, []).append(value)
    return Scored(np.array(p, np.float64), np.array(y, np.int64), np.array(speakers),
                  {k: np.array(v) for k, v in groups.items()}, failed)


def score_split(model: classifier.Classifier, data_dir: str, split: str) -> Scored:
    rows, sources = held_out(data_dir, split)
    items, missing = [], 0
    for clip_id, label, speaker in rows:
        path = common.locate(clip_id, sources)
        if path is None:
            missing += 1
            continue
        items.append((path, label, speaker, {}))
    scored = score(model, items)
    if missing:
        scored.failed["file_not_found"] = missing
    return scored


def score_expressive(model: classifier.Classifier, root: str) -> Scored | None:
    """Every labelled clip of the expressive corpora under ``root`` (None when absent), with corpus and emotion."""
    if not os.path.isdir(root):
        return None
    table = attributes.load_attributes([root])
    items = []
    for locale_dir in attributes.locale_dirs(root):
        name = os.path.basename(locale_dir)
        for clip in common.labelled_clips(locale_dir):
            emotion = table.get(clip.clip_id, {}).get("emotion", "unknown")
            items.append((clip.audio_path, clip.label, f"{name}/{clip.speaker_id}", {"corpus": name, "emotion": emotion}))
    return score(model, items) if items else None


# ---------------------------------------------------------------------------------------------------------------
# Figures


def error_rate(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(calibration.predicted_labels(p) != y))


balanced_accuracy = fitting.balanced_accuracy


def summary(p: np.ndarray, y: np.ndarray) -> dict:
    """ECE, balanced accuracy, error rate and the printed coverage curve of one set of scores."""
    return {"ece": fitting.expected_calibration_error(p, y, FLAGS.bins),
            "balanced_accuracy": balanced_accuracy(p, y) if len(set(y.tolist())) == 2 else None,
            "error_rate": error_rate(p, y),
            "curve": [pt.to_dict() for pt in fitting.coverage_curve(p, y, CURVE_THRESHOLDS)]}


def ece_interval(p: np.ndarray, y: np.ndarray, speakers: np.ndarray, rng: np.random.Generator) -> list[float]:
    """5th and 95th percentiles of the ECE over speaker bootstrap resamples (clips of a speaker move together)."""
    names, index = np.unique(speakers, return_inverse=True)
    members = [np.flatnonzero(index == i) for i in range(len(names))]
    values = []
    for _ in range(FLAGS.bootstrap):
        take = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        values.append(fitting.expected_calibration_error(p[take], y[take], FLAGS.bins))
    return [float(np.percentile(values, 5)), float(np.percentile(values, 95))] if values else [None, None]


def ece_floor(p: np.ndarray, rng: np.random.Generator, draws: int = 300) -> float:
    """Mean ECE of labels drawn from ``p`` itself: what a perfectly calibrated model scores on this many clips."""
    return float(np.mean([fitting.expected_calibration_error(p, (rng.random(len(p)) < p).astype(int),
                                                                 FLAGS.bins) for _ in range(draws)]))


def choose_min_confidence(p: np.ndarray, y: np.ndarray, target: float) -> fitting.CoveragePoint:
    """The largest searched C that still answers ``target`` of the clips (ties: the strictest C)."""
    curve = fitting.coverage_curve(p, y, SEARCH_THRESHOLDS)
    return [pt for pt in curve if pt.coverage >= target][-1]  # C = 0.5 answers every clip


def at(p: np.ndarray, y: np.ndarray, c: float) -> dict:
    return fitting.coverage_curve(p, y, [c])[0].to_dict()


def print_curves(title: str, curves: dict[str, list[dict]]) -> None:
    print(f"\n{title}: at confidence >= C, share of clips answered / share of those wrong")
    print(f"{'C':>6}" + "".join(f"{name:>24}" for name in curves))
    for i, c in enumerate(CURVE_THRESHOLDS):
        cells = []
        for curve in curves.values():
            pt = curve[i]
            err = "-" if pt["error_rate"] is None else f"{pt['error_rate']:.4f}"
            cells.append(f"{pt['coverage']:>14.3f} / {err:>7}")
        print(f"{c:>6.2f}" + "".join(cells))


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------------------------------------------------------


def cross_validate(val: Scored, method: str) -> fitting.MethodScore:
    """``fitting.cross_validated`` with this run's folds, repeats, seed and bins (what ``voicegender calibrate`` does)."""
    return fitting.cross_validated(val.p, val.y, val.speakers, method, FLAGS.folds, FLAGS.cv_repeats, FLAGS.seed,
                                   FLAGS.bins)


def best_two_sided(p: np.ndarray, y: np.ndarray, target: float) -> dict:
    """The lowest error rate at >= ``target`` coverage of ANY monotone calibration with a minimum confidence.

    A monotone calibration followed by "confidence >= C" answers the clips with raw p <= a (male) or
    p >= b (female) for some a < 0.5 <= b, and refuses the rest; this tries every such pair (ties of p
    ignored), so no stored calibration can do better on these clips. In hindsight: a bound, not a choice.
    """
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    male = ps < calibration.THRESHOLD
    male_errors = np.concatenate([[0], np.cumsum(ys[male])])  # the k lowest-p male answers: females among them
    female_errors = np.concatenate([[0], np.cumsum(1 - ys[~male][::-1])])  # the j highest-p female answers
    k = np.arange(len(male_errors))[:, None]
    j = np.arange(len(female_errors))[None, :]
    answered = k + j
    ok = answered >= target * len(p)
    rate = np.where(ok, (male_errors[:, None] + female_errors[None, :]) / np.maximum(answered, 1), np.inf)
    best = np.unravel_index(np.argmin(rate), rate.shape)
    n = int(answered[best])
    return {"answered": n, "coverage": n / len(p), "error_rate": float(rate[best]),
            "wrong": int(round(rate[best] * n))}


def evaluate(val: Scored, test: Scored, rng: np.random.Generator) -> dict:
    """Cross-validates every method on validation, chooses one, and reports it on test."""
    # One pass over the figures the issue asks for, in the order they are printed; splitting it would scatter them.
    methods: dict[str, dict] = {}
    fitted: dict[str, calibration.Calibration] = {}
    oof: dict[str, np.ndarray] = {}
    val_raw_accuracy = balanced_accuracy(val.p, val.y)
    scores: dict[str, fitting.MethodScore] = {}
    for method in (calibration.IDENTITY, *calibration.METHODS):
        try:
            scores[method] = cross_validate(val, method)
            oof[method] = scores[method].first_out_of_fold
            fitted[method] = fitting.fit(val.p, val.y, method)
        except ValueError as e:  # e.g. scores that rank the genders backwards: that method is out
            scores.pop(method, None)
            methods[method] = {"error": str(e)}
            print(f"{method}: cannot be fitted: {e}")
            continue
        after = summary(fitted[method].apply(test.p), test.y)
        methods[method] = {"validation_cv_ece": scores[method].cv_ece, "validation_cv_ece_sd": scores[method].cv_ece_sd,
                           "validation_cv_balanced_accuracy": scores[method].cv_balanced_accuracy,
                           "test_ece": after["ece"], "test_balanced_accuracy": after["balanced_accuracy"],
                           "test_error_rate": after["error_rate"], "calibration": fitted[method].to_dict()}
    # Chosen on validation alone, as ``voicegender calibrate`` chooses (``fitting.choose_method``).
    chosen = fitting.choose_method(scores, val_raw_accuracy)
    cal = fitted[chosen]
    before, after = summary(test.p, test.y), summary(cal.apply(test.p), test.y)
    # The minimum confidence: chosen on validation's out-of-fold calibrated scores (clips whose calibration
    # never saw them), judged on test.
    picked = choose_min_confidence(oof[chosen], val.y, FLAGS.target_coverage)
    picked_raw = choose_min_confidence(val.p, val.y, FLAGS.target_coverage)
    test_at = at(cal.apply(test.p), test.y, picked.threshold)
    hindsight = choose_min_confidence(cal.apply(test.p), test.y, FLAGS.target_coverage)
    today = before["error_rate"]
    wrong = calibration.predicted_labels(test.p) != test.y
    conf = calibration.confidence(test.p)
    return {
        "methods": methods, "chosen_method": chosen, "calibration": cal.to_dict(),
        "calibration_fitted_on": {"split": "validation", "clips": int(len(val.p)),
                                  "speakers": len(set(val.speakers.tolist()))},
        "validation_before": {"balanced_accuracy": val_raw_accuracy, "error_rate": error_rate(val.p, val.y),
                              "ece": fitting.expected_calibration_error(val.p, val.y, FLAGS.bins)},
        "test_before": before, "test_after": after,
        "test_ece_interval_before": ece_interval(test.p, test.y, test.speakers, rng),
        "test_ece_interval_after": ece_interval(cal.apply(test.p), test.y, test.speakers, rng),
        "test_ece_floor_after": ece_floor(cal.apply(test.p), rng),
        "test_reliability_after": fitting.reliability(cal.apply(test.p), test.y, FLAGS.bins),
        "min_confidence": picked.threshold,
        "min_confidence_validation": picked.to_dict(),
        "min_confidence_test": test_at,
        "min_confidence_uncalibrated": picked_raw.threshold,
        "min_confidence_uncalibrated_test": at(test.p, test.y, picked_raw.threshold),
        "min_confidence_hindsight_test": hindsight.to_dict(),
        "best_possible_test": best_two_sided(test.p, test.y, FLAGS.target_coverage),
        # Each wrong test clip: its raw p, and the share of clips at least as confident (refusing it costs that).
        "test_wrong_clips": [{"p_female": float(test.p[i]), "label": int(test.y[i]),
                              "share_at_least_as_confident": float(np.mean(conf >= conf[i]))}
                             for i in np.flatnonzero(wrong)],
        "today_error_rate": today,
        "goal_ece_met": after["ece"] <= ECE_GOAL,
        "goal_selective_met": (test_at["coverage"] >= FLAGS.target_coverage and test_at["error_rate"] is not None
                               and test_at["error_rate"] <= ERROR_RATIO_GOAL * today),
    }


def expressive_figures(scored: Scored, cal: calibration.Calibration, min_confidence: float) -> dict:
    """ECE, error and the curve before/after on the expressive clips, pooled and per corpus and emotion."""
    after_p = cal.apply(scored.p)
    out = {"clips": int(len(scored.p)), "failed": scored.failed, "before": summary(scored.p, scored.y),
           "after": summary(after_p, scored.y), "at_min_confidence": at(after_p, scored.y, min_confidence),
           "groups": {}}
    for group in ("corpus", "emotion"):
        for value in sorted(set(scored.groups[group].tolist())):
            m = scored.groups[group] == value
            out["groups"][f"{group}={value}"] = {
                "clips": int(m.sum()),
                "ece_before": fitting.expected_calibration_error(scored.p[m], scored.y[m], FLAGS.bins),
                "ece_after": fitting.expected_calibration_error(after_p[m], scored.y[m], FLAGS.bins),
                "error_rate": error_rate(scored.p[m], scored.y[m]),
                "at_min_confidence": at(after_p[m], scored.y[m], min_confidence)}
    return out


def report(data: str, match: bool | None, val: Scored, test: Scored, r: dict, expressive: dict | None) -> None:
    # Printing only: one table after another, kept together so the output reads as the code does.
    print(f"\ndata: {data}; held-out split identical to the shipped model's: "
          f"{'not checked' if match is None else 'yes' if match else 'NO'}")
    for name, s in (("validation", val), ("test", test)):
        print(f"{name}: {len(s.p)} clips ({int(s.y.sum())} female), {len(set(s.speakers.tolist()))} speakers; "
              f"not classified: {s.failed or 'none'}")
    vb = r["validation_before"]
    print(f"validation, uncalibrated: ECE {vb['ece']:.4f}, balanced accuracy {vb['balanced_accuracy']:.4f}, "
          f"error {vb['error_rate']:.4f}")
    print(f"\nECE ({FLAGS.bins} bins over confidence [0.5, 1]); validation: {FLAGS.folds}-fold CV by speaker, "
          f"mean (sd) of {FLAGS.cv_repeats} fold assignments")
    print(f"{'method':<12}{'val CV ECE':>17}{'val CV bal acc':>16}{'test ECE':>10}{'test bal acc':>14}"
          f"{'test error':>12}")
    for method, m in r["methods"].items():
        if "error" in m:
            print(f"{method:<12}  failed: {m['error']}")
            continue
        cv_ece = f"{m['validation_cv_ece']:.4f} ({m['validation_cv_ece_sd']:.4f})"
        print(f"{method:<12}{cv_ece:>17}{m['validation_cv_balanced_accuracy']:>16.4f}{m['test_ece']:>10.4f}"
              f"{fmt(m['test_balanced_accuracy']):>14}{m['test_error_rate']:>12.4f}")
    print(f"chosen (lowest validation CV ECE, CV balanced accuracy not lower): {r['chosen_method']} {json.dumps(r['calibration'])[:300]}")
    lo, hi = r["test_ece_interval_before"], r["test_ece_interval_after"]
    print(f"test ECE {r['test_before']['ece']:.4f} -> {r['test_after']['ece']:.4f} (speaker bootstrap 90%: "
          f"{fmt(lo[0])}-{fmt(lo[1])} -> {fmt(hi[0])}-{fmt(hi[1])}; a perfectly calibrated model would show "
          f"~{r['test_ece_floor_after']:.4f} on {len(test.p)} clips); goal <= {ECE_GOAL}: "
          f"{'met' if r['goal_ece_met'] else 'NOT met'}")
    print(f"test balanced accuracy {fmt(r['test_before']['balanced_accuracy'])} -> "
          f"{fmt(r['test_after']['balanced_accuracy'])}; error rate {r['test_before']['error_rate']:.4f} -> "
          f"{r['test_after']['error_rate']:.4f}")
    print_curves("test", {"before (raw p)": r["test_before"]["curve"], "after (calibrated)": r["test_after"]["curve"]})
    v, t = r["min_confidence_validation"], r["min_confidence_test"]
    print(f"\nmin_confidence = {r['min_confidence']} (largest C answering >= {FLAGS.target_coverage:.0%} of "
          f"validation clips, out-of-fold: {v['coverage']:.3f} answered, {fmt(v['error_rate'])} wrong)")
    print(f"  on test: {t['coverage']:.3f} answered, {fmt(t['error_rate'])} wrong vs today's {r['today_error_rate']:.4f} "
          f"(goal: >= {FLAGS.target_coverage:.0%} answered, <= {ERROR_RATIO_GOAL * r['today_error_rate']:.4f}): "
          f"{'met' if r['goal_selective_met'] else 'NOT met'}")
    u = r["min_confidence_uncalibrated_test"]
    print(f"  the same rule on raw p: C = {r['min_confidence_uncalibrated']}, test {u['coverage']:.3f} answered, "
          f"{fmt(u['error_rate'])} wrong")
    h = r["min_confidence_hindsight_test"]
    print(f"  in hindsight on test (not a choice): C = {h['threshold']}, {h['coverage']:.3f} answered, "
          f"{fmt(h['error_rate'])} wrong")
    b = r["best_possible_test"]
    print(f"  bound, in hindsight: any monotone calibration + min_confidence answering >= "
          f"{FLAGS.target_coverage:.0%} of test is wrong on at least {b['error_rate']:.4f} "
          f"({b['wrong']} of {b['answered']})")
    print("  wrong test clips (raw p_female, label, share of clips at least as confident): " + ", ".join(
        f"{w['p_female']:.4f}/{w['label']}/{w['share_at_least_as_confident']:.3f}" for w in r["test_wrong_clips"]))
    print("test reliability after (bin: clips, confidence, accuracy): " + "; ".join(
        f"[{row['low']:.2f},{row['high']:.2f}) {row['clips']} {row['confidence']:.3f} {row['accuracy']:.3f}"
        for row in r["test_reliability_after"]))
    if expressive is None:
        print("\nexpressive corpora: absent")
        return
    e = expressive
    print(f"\nexpressive corpora (evaluation only, nothing fitted on them): {e['clips']} clips, "
          f"not classified: {e['failed'] or 'none'}")
    print(f"ECE {e['before']['ece']:.4f} -> {e['after']['ece']:.4f}; balanced accuracy "
          f"{fmt(e['before']['balanced_accuracy'])} -> {fmt(e['after']['balanced_accuracy'])}; error "
          f"{e['before']['error_rate']:.4f} -> {e['after']['error_rate']:.4f}; at min_confidence "
          f"{r['min_confidence']}: {e['at_min_confidence']['coverage']:.3f} answered, "
          f"{fmt(e['at_min_confidence']['error_rate'])} wrong")
    print(f"{'group':<26}{'clips':>6}{'ECE before':>12}{'ECE after':>11}{'error':>8}{'answered':>10}{'wrong':>8}")
    for name, g in e["groups"].items():
        a = g["at_min_confidence"]
        print(f"{name:<26}{g['clips']:>6}{g['ece_before']:>12.4f}{g['ece_after']:>11.4f}{g['error_rate']:>8.4f}"
              f"{a['coverage']:>10.3f}{fmt(a['error_rate']):>8}")
    print_curves("expressive", {"before (raw p)": e["before"]["curve"], "after (calibrated)": e["after"]["curve"]})


def main(argv: list[str]) -> None:
    del argv
    start = time.time()
    temp = None if FLAGS.work_dir or FLAGS.data_dir else tempfile.mkdtemp(prefix="vg_calibration_")
    try:
        work_dir = FLAGS.work_dir or temp or ""
        data_dir, data, shipped = prepare_data(work_dir)
        match = None
        if shipped is not None:
            # The job is deterministic for a seed: the same flags and corpora give the same held-out speakers.
            expected = {s: {k: shipped["splits"][s][k] for k in ("clips", "speakers")} for s in ("validation", "test")}
            match = split_counts(data_dir) == expected
            if not match:
                print(f"WARNING: the held-out split differs from the shipped model's: {split_counts(data_dir)} vs "
                      f"{expected}", flush=True)
        model = classifier.Classifier()
        # Fitted here: score the model's raw p, not the shipped fit's.
        model.calibration = model.whole_file_calibration = calibration.identity()
        val, test = score_split(model, data_dir, "validation"), score_split(model, data_dir, "test")
        rng = np.random.default_rng(FLAGS.seed)
        result = evaluate(val, test, rng)
        expressive_root = FLAGS.expressive_dir or os.path.join(FLAGS.shared_dir, EXPRESSIVE)
        scored = score_expressive(model, expressive_root)
        expressive = (None if scored is None else
                      expressive_figures(scored, calibration.Calibration.from_dict(result["calibration"]),
                                         result["min_confidence"]))
        report(data, match, val, test, result, expressive)
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    # Where the chosen fit belongs in voicegender.json: predict's default verdicts or its --vad=none ones.
    key = export_format.WHOLE_FILE_CALIBRATION_KEY if FLAGS.vad == segments.WHOLE_FILE else export_format.CALIBRATION_KEY
    common.print_json({"data": data, "held_out_matches_shipped": match, "vad": FLAGS.vad, "export_key": key,
                       "bins": FLAGS.bins,
                       "validation_clips": int(len(val.p)), "test_clips": int(len(test.p)),
                       "not_classified": {"validation": val.failed, "test": test.failed},
                       **result, "expressive": expressive, "wall_s": round(time.time() - start, 1)})


if __name__ == "__main__":
    define_flags()
    app.run(main)
