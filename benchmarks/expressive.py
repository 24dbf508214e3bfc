r"""Emotional speech: each model, and inaSpeechSegmenter as a peer, by corpus, emotion and gender (issue 9).

Classifies every labelled clip of each expressive corpus (``<shared>/expressive/*``:
Common Voice 17+ layout, an attribute TSV such as ``emotion.tsv`` beside
``validated.tsv``) with every ``--model`` as ``predict`` does (LiteRT, the
file's verdict over its speech, ``--vad``), and with inaSpeechSegmenter when
its own virtualenv exists (``benchmarks/peers/setup_ina.sh``; it is a
benchmark dependency only). Prints, per corpus, balanced clip accuracy and,
per emotion, male and female recall of each system side by side; a clip a
system cannot answer (too short, no speech found) counts as wrong. With
``--calm_data_dir`` (an output of ``beam_jobs.preprocess``) each model is also
scored on that data's held-out calm speakers, the same way: what a candidate
buys on emotional speech and what it costs on calm speech, in one run. The
last line is one JSON object, with the issue's goals checked for the first model.

These corpora are for evaluation only: their licences do not allow training
a model the project redistributes.

Usage:
  python -m benchmarks.expressive [--model=shipped=model/pretrained --model=cand=/tmp/run/export] \
      [--expressive_dir=../shared/data/expressive] [--peer] [--calm_data_dir=/tmp/vg_logmel_all]
"""

from __future__ import annotations

import functools
import os
import time

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported (model.evaluate.evaluation imports it)

import numpy as np
from absl import app, flags

from benchmarks import common
from model.evaluate import evaluation
from model.predict import classifier, export_format, segments
from pipeline import attributes

FLAGS = flags.FLAGS
PEER = common.PEER
EMOTION = "emotion"
# Issue 9's goals: balanced clip accuracy per corpus, and male recall on these emotions in every corpus.
GOAL_BALANCED = {"am-ased": 0.85, "ur-urdu": 0.92, "pl-nemo": 0.97, "ko-emotiontts": 1.0}
GOAL_MALE_RECALL = 0.85
GOAL_EMOTIONS = ("angry", "happy", "fearful")
GOAL_CALM_TEST = 0.975  # Common Voice and LibriSpeech test speakers


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_multi_string("model", [f"shipped={export_format.PRETRAINED_DIR}"], "name=export_dir (repeatable; "
                              "the first is checked against the goals).")
    flags.DEFINE_string("expressive_dir", os.path.join(common.REPO, "..", "shared", "data", "expressive"),
                        "Corpora in the Common Voice 17+ layout with an attribute TSV (emotion.tsv) each.")
    flags.DEFINE_enum("vad", "silero", list(segments.VERDICT_METHODS), "predict's --vad for the models.")
    flags.DEFINE_bool("peer", True, f"Also run {PEER} when its virtualenv ({common.PEER_PYTHON}) exists.")
    flags.DEFINE_integer("workers", 2, "Files classified at once per model.")
    flags.DEFINE_integer("limit", 0, "At most this many clips per corpus (0: all; a smoke run).")
    flags.DEFINE_string("calm_data_dir", None, "A beam_jobs.preprocess output: also score each model on its "
                        "held-out calm speakers (--calm_splits), as predict does (its --cv_dir sources must exist).")
    flags.DEFINE_list("calm_splits", ["validation", "test"], "The splits of --calm_data_dir to score.")


@functools.cache
def _classifier(model_dir: str) -> classifier.Classifier:
    """One Classifier per export for the whole run (every corpus and calm split), loaded once."""
    return classifier.Classifier(export_format.resolve_model_dir(model_dir))


def model_scores(model_dir: str, paths: list[str]) -> np.ndarray:
    """p_female of each path as ``predict`` gives it (NaN: no answer)."""
    model = _classifier(model_dir)
    verdicts = classifier.map_in_order(segments.file_classifier(model, FLAGS.vad), paths, FLAGS.workers, 32)
    return np.array([np.nan if v.error else v.p_female for v in verdicts], np.float64)


def cells(p: np.ndarray, labels: np.ndarray, clip_ids: list[str], emotions: list[str]) -> dict:
    """Balanced accuracy of one system on one corpus, and male/female recall per emotion (no answer: wrong)."""
    answered = common.unanswered_as_wrong(p, labels)
    clips = evaluation.ClipPredictions(np.array(clip_ids), answered, labels, {EMOTION: np.array(emotions)})
    return {"clips": len(labels), "unanswered": int(np.isnan(p).sum()),
            "balanced_accuracy": evaluation.balanced_accuracy(answered, labels),
            "by_emotion": evaluation.group_metrics(clips)[EMOTION]}


def calm_scores(systems: dict[str, str], data_dir: str, splits: list[str]) -> dict:
    """Balanced clip accuracy of each model on each held-out split of a preprocessed directory (no answer: wrong)."""
    result = {}
    for split in splits:
        clips, sources = common.held_out_clips(data_dir, split)
        found = {clip_id: common.locate(clip_id, sources) for clip_id in sorted(clips)}
        missing = [clip_id for clip_id, path in found.items() if path is None]
        if missing:
            raise FileNotFoundError(f"{len(missing)} {split} clips of {data_dir} are not under its sources "
                                    f"{sources}, e.g. {missing[0]}")
        labels = np.array([clips[c] for c in found])
        for name, model_dir in systems.items():
            p = model_scores(model_dir, list(found.values()))
            result.setdefault(name, {})[split] = {
                "clips": len(labels), "unanswered": int(np.isnan(p).sum()),
                "balanced_accuracy": evaluation.balanced_accuracy(common.unanswered_as_wrong(p, labels), labels)}
    return result


def goals(result: dict, calm: dict | None = None) -> dict:
    """The issue's goals for one system's per-corpus results (and its calm test speakers, when scored)."""
    met = {}
    if calm and "test" in calm:
        met[f"calm_test_{GOAL_CALM_TEST}"] = calm["test"]["balanced_accuracy"] >= GOAL_CALM_TEST
    for corpus, r in result.items():
        if corpus in GOAL_BALANCED:
            met[f"{corpus}_balanced_{GOAL_BALANCED[corpus]}"] = r["balanced_accuracy"] >= GOAL_BALANCED[corpus]
        for emotion in GOAL_EMOTIONS:
            recall = r["by_emotion"].get(emotion, {}).get("male_recall")
            if recall is not None:
                met[f"{corpus}_{emotion}_male_recall_{GOAL_MALE_RECALL}"] = recall >= GOAL_MALE_RECALL
    return met


def print_table(results: dict[str, dict]) -> None:
    """One block per corpus: a row per emotion, male/female recall of each system."""
    systems = list(results)
    for corpus in results[systems[0]]:
        first = results[systems[0]][corpus]
        print(f"\n{corpus}: {first['clips']} clips; balanced clip accuracy "
              + ", ".join(f"{s} {results[s][corpus]['balanced_accuracy']:.3f}"
                          f" ({results[s][corpus]['unanswered']} unanswered)" for s in systems))
        print(f"  {'emotion':<11}{'clips M/F':>10}" + "".join(f"{s[:20]:>22}" for s in systems))
        for emotion, cell in sorted(first["by_emotion"].items()):
            row = f"  {emotion:<11}{cell['male']:>5}/{cell['female']:<4}"
            for s in systems:
                c = results[s][corpus]["by_emotion"][emotion]
                m, f = (f"{c[k]:.2f}" if c[k] is not None else "-" for k in ("male_recall", "female_recall"))
                row += f"{m + ' / ' + f:>22}"
            print(row)
    print("\n(cells: male recall / female recall)")


def main(argv: list[str]) -> None:
    del argv
    start = time.time()
    root = FLAGS.expressive_dir
    if not os.path.isdir(root):
        print(f"SKIPPED: no expressive corpora at {root} (they live in ../shared/data, beside the project)")
        common.print_json({"skipped": f"no {root}"})
        return
    corpora = [os.path.basename(d) for d in attributes.locale_dirs(root)]
    table = attributes.load_attributes([root])
    systems = common.named_exports(FLAGS.model)
    run_peer = FLAGS.peer and os.path.exists(common.PEER_PYTHON)
    if FLAGS.peer and not run_peer:
        print(common.PEER_MISSING)
    results: dict[str, dict] = {name: {} for name in [*systems, *([PEER] if run_peer else [])]}
    seconds: dict[str, float] = dict.fromkeys(results, 0.0)
    for corpus in corpora:
        clips = common.labelled_clips(os.path.join(root, corpus))
        clips = clips[:FLAGS.limit] if FLAGS.limit else clips
        ids, paths = [c.clip_id for c in clips], [c.audio_path for c in clips]
        labels = np.array([c.label for c in clips])
        emotions = attributes.attribute_columns(table, ids).get(EMOTION, ["(none)"] * len(ids))
        for name in results:
            t = time.perf_counter()
            p = common.peer_scores(paths) if name == PEER else model_scores(systems[name], paths)
            seconds[name] += time.perf_counter() - t
            results[name][corpus] = cells(p, labels, ids, emotions)
        print(f"{corpus}: {len(clips)} clips scored by {', '.join(results)}", flush=True)
    print_table(results)
    calm = calm_scores(systems, FLAGS.calm_data_dir, FLAGS.calm_splits) if FLAGS.calm_data_dir else {}
    for name, by_split in calm.items():
        print(f"calm speakers ({FLAGS.calm_data_dir}), {name}: " + ", ".join(
            f"{split} {r['balanced_accuracy']:.3f} ({r['clips']} clips)" for split, r in by_split.items()))
    first = next(iter(systems))
    met = goals(results[first], calm.get(first))
    print(f"\ngoals for {first}: {sum(met.values())} of {len(met)} met; missed: "
          + (", ".join(k for k, v in met.items() if not v) or "none"))
    common.print_json({"vad": FLAGS.vad, "models": systems, "results": results, "calm": calm, "goals": {first: met},
                       "wall_s_per_system": seconds, "wall_s": round(time.time() - start, 1)}, digits=4)


if __name__ == "__main__":
    define_flags()
    app.run(main)
