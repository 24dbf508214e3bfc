r"""Issue 21's candidates side by side: the shipped CNN, ina's gender CNN, and their fusions.

Every clip is read as ``predict`` reads it (Silero speech, the default
verdict's segments). On the shipped model's grid of 0.96 s blocks, each block
gets two logits: the shipped CNN's, and the mean logit of the ina CNN's
68-frame patches centred in it (``--ina_model``, an export of
``python -m model.export.ina``), the patches taken every 68 or 34 frames (two
LiteRT calls, the second 34 frames later). The candidates pool those:

- ``shipped``: mean p over the speech blocks (today's default verdict);
- ``ina_step68_p`` / ``ina_step34_p`` / ``ina_step34_logit``: ina's CNN alone, mean p or mean logit;
- ``ina_recipe``: ina's CNN alone on the whole clip as the issue measured it (no Silero): patches every 34
  frames, only those whose centre frame is over ina's energy threshold (mean log energy + log 0.03; ina
  smooths that mask with a Viterbi pass, this does not), mean logit;
- ``fuse_mean_logit``: the mean of the two logits per block, then the mean logit over the clip;
- ``fuse_recipe_mean_logit``: the mean of the shipped CNN's mean speech-block logit and the recipe's;
- ``fuse_fit_clip``: a two-input logistic fit (balanced class weights) on the calm validation speakers'
  clip mean logits; ``fuse_fit_block``: the same fit per block, mean p;
- each ``--model=name=export_dir``: a trained export of ours (``model.export.fused``'s, a fine-tuned
  fusion run's, ``--ina_consistency``'s) on the same speech segments, mean p of its blocks, uncalibrated
  as ``shipped`` is;
- ``inaSpeechSegmenter``, the peer: ina's full pipeline on each whole file (its speech/music/noise
  segmenter, the same gender CNN on patches every 2 frames, Viterbi smoothing; p_female its female share
  of the speech time), when its virtualenv exists (``bash benchmarks/peers/setup_ina.sh``; ``--nopeer``).

Prints balanced clip accuracy on the calm validation and test speakers of
``--calm_data_dir`` and on each expressive corpus (evaluation only: only the
calm validation split is fitted), male recall on angry, happy and fearful
clips, and the seconds each model spent with its real-time factor (ours: time
inside the model only; the peer's: the wall time of its whole process, so the
two are not the same measure). The last line is one JSON object.

Usage:
  python -m model.export.ina --wheel=inaSpeechSegmenter-0.6.8-py3-none-any.whl --output_dir=/tmp/ina_export
  python -m benchmarks.candidates --ina_model=/tmp/ina_export --calm_data_dir=/tmp/vg_aug03 \
      [--model=consistency=/tmp/runs/cons1/export ...]
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable

import numpy as np
from absl import app, flags

from benchmarks import common
from model.predict import classifier, export_format, segments
from pipeline import attributes, audio

FLAGS = flags.FLAGS
EPS = 1e-6  # logits of p in [EPS, 1 - EPS]: a saturated float32 softmax stays finite
EMOTIONS = ("angry", "happy", "fearful")
# The candidates built from the components, in the table's order (``candidates``); a --model takes none of them.
BUILT_IN = ("shipped", "ina_step68_p", "ina_step34_p", "ina_step34_logit", "ina_recipe", "fuse_mean_logit",
            "fuse_recipe_mean_logit", "fuse_fit_clip", "fuse_fit_block")
# Component columns of the per-block matrix.
SHIPPED, INA_68, INA_34 = 0, 1, 2
ENERGY_RATIO = 0.03  # ina's energy threshold: frames over mean log energy + log(ratio) are active
PRE_EMPHASIS = 0.97


@dataclasses.dataclass(frozen=True)
class ClipComponents:
    """One clip as the candidates see it.

    Attributes:
      blocks: [blocks, 3] logits of its speech blocks: shipped, ina step 68, ina step 34.
      ina_recipe: the mean ina logit of its energetic patches, every 34 frames over the whole clip.
      exports: each ``--model``'s block logits on the same speech segments (its own block grid).
    """

    blocks: np.ndarray
    ina_recipe: float
    exports: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs)."""
    flags.DEFINE_string("shipped_model", export_format.PRETRAINED_DIR, "The project's export.")
    flags.DEFINE_string("ina_model", None, "An export of `python -m model.export.ina`.")
    flags.DEFINE_string("calm_data_dir", None, "A beam_jobs.preprocess output: its validation split fits the "
                        "fusion, its test split is scored.")
    flags.DEFINE_string("expressive_dir", os.path.join(common.REPO, "..", "shared", "data", "expressive"),
                        "Expressive corpora (evaluation only).")
    flags.DEFINE_integer("workers", 2, "Files classified at once.")
    flags.DEFINE_integer("limit", 0, "At most this many clips per set (0: all).")
    flags.DEFINE_multi_string("model", [], "name=export_dir: also score this export of ours on the same speech "
                              "segments (mean p of its blocks, uncalibrated; repeatable).")
    flags.DEFINE_bool("peer", True, f"Also run {common.PEER}'s full pipeline when its virtualenv "
                      f"({common.PEER_PYTHON}) exists.")


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def block_means(patch_logits: np.ndarray, centres: np.ndarray, blocks: int, block_frames: int) -> np.ndarray:
    """Mean of the patch logits whose centre frame falls in each block (NaN for a block with none)."""
    index = centres // block_frames
    keep = index < blocks
    sums = np.bincount(index[keep], patch_logits[keep], minlength=blocks)
    counts = np.bincount(index[keep], minlength=blocks)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def ina_block_logits(every_68: np.ndarray, shifted_34: np.ndarray, blocks: int, block_frames: int,
                     patch_frames: int = 68) -> tuple[np.ndarray, np.ndarray]:
    """Per block, the mean ina logit of patches every ``patch_frames`` frames, and every half of that.

    Args:
      every_68: the ina CNN's p_female of patches starting at frames 0, 68, 136, ...
      shifted_34: the same of the waveform 34 frames later (patches starting at 34, 102, ...).
      blocks: the shipped model's blocks over the same waveform.
      block_frames: frames per shipped block (96).
    """
    half = patch_frames // 2
    la, lb = logit(every_68), logit(shifted_34)
    centres_a = np.arange(len(la)) * patch_frames + half
    step68 = block_means(la, centres_a, blocks, block_frames)
    both = np.concatenate([la, lb])
    centres = np.concatenate([centres_a, np.arange(len(lb)) * patch_frames + half + half])
    return step68, block_means(both, centres, blocks, block_frames)


def frame_log_energy(waveform: np.ndarray, frame_length: int = 400, frame_step: int = 160) -> np.ndarray:
    """ina's per-frame log energy: frames without padding, pre-emphasis inside each frame, before the window."""
    count = 1 + (len(waveform) - frame_length) // frame_step if len(waveform) >= frame_length else 0
    index = np.arange(frame_length)[None, :] + frame_step * np.arange(count)[:, None]
    frames = waveform.astype(np.float64)[index]
    emphasised = np.concatenate([frames[:, :1] * (1.0 - PRE_EMPHASIS),
                                 frames[:, 1:] - PRE_EMPHASIS * frames[:, :-1]], axis=1)
    with np.errstate(divide="ignore"):
        return np.log(np.square(emphasised).sum(axis=1))


def recipe_logit(every_68: np.ndarray, shifted_34: np.ndarray, log_energy: np.ndarray,
                 patch_frames: int = 68) -> float:
    """Mean logit of the patches (every half patch) whose centre frame is over ina's energy threshold.

    All patches count when none is (or when no frame has finite energy).
    """
    half = patch_frames // 2
    logits = np.concatenate([logit(every_68), logit(shifted_34)])
    centres = np.concatenate([np.arange(len(every_68)) * patch_frames + half,
                              np.arange(len(shifted_34)) * patch_frames + 2 * half])
    finite = np.isfinite(log_energy)
    if not finite.any() or not len(logits):
        return float(logits.mean()) if len(logits) else float("nan")
    active = log_energy > log_energy[finite].mean() + np.log(ENERGY_RATIO)
    keep = active[np.minimum(centres, len(active) - 1)]
    return float(logits[keep].mean() if keep.any() else logits.mean())


class ComponentClassifier(classifier.Classifier):
    """The shipped classifier, recording per scored block (shipped logit, ina step-68 logit, step-34 logit), and
    each of ``exports``' block logits on the same waveform."""

    def __init__(self, shipped_dir: str, ina_dir: str, exports: dict[str, str] | None = None):
        super().__init__(shipped_dir)
        self.ina = classifier.Classifier(ina_dir)
        self.exports = {name: classifier.Classifier(path) for name, path in (exports or {}).items()}
        self._shift = self.ina.feature_set.block_frames // 2 * self.ina.feature_set.frame_step
        self._record = threading.local()
        self.seconds = {"shipped": 0.0, "ina": 0.0, **dict.fromkeys(self.exports, 0.0)}
        self.audio_s = 0.0  # of the clips scored, for the real-time factors
        self._seconds_lock = threading.Lock()  # workers add to the same totals

    def _spent(self, name: str, since: float) -> None:
        with self._seconds_lock:
            self.seconds[name] += time.perf_counter() - since

    def block_probabilities(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        p, voiced = super().block_probabilities(waveform)
        self._spent("shipped", t)
        pa, pb = self._ina_patches(np.ascontiguousarray(waveform, np.float32))
        step68, step34 = ina_block_logits(pa, pb, len(p), self.feature_set.block_frames)
        rows = getattr(self._record, "rows", None)
        if rows is not None:
            rows.append(np.stack([logit(p), step68, step34], axis=1))
            for name, export in self.exports.items():
                t = time.perf_counter()
                self._record.exports[name].append(logit(export.block_probabilities(waveform)[0]))
                self._spent(name, t)
        return p, voiced

    def _ina_patches(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ina CNN's p_female of patches every 68 frames, and of those starting 34 frames later."""
        t = time.perf_counter()
        pa, _ = self.ina.block_probabilities(wave)
        shifted = wave[self._shift:]
        pb = self.ina.block_probabilities(shifted)[0] if len(shifted) >= self.ina.feature_set.min_clip_samples \
            else np.zeros(0, np.float32)
        self._spent("ina", t)
        return pa, pb

    def components(self, path: str) -> ClipComponents | None:
        """One file's speech-block logits and its ina-recipe logit (None: no verdict for it)."""
        try:
            wave = np.ascontiguousarray(self.decode(path), np.float32)  # read once: the verdict and the recipe
        except audio.AudioError:
            return None
        self._record.rows, self._record.exports = [], {name: [] for name in self.exports}
        verdict = segments.speech_verdict(self, path, segments.SegmentConfig(method="silero"), chunks=[wave])
        rows, exports, self._record.rows = self._record.rows, self._record.exports, None
        if verdict.error or not rows:
            return None
        with self._seconds_lock:
            self.audio_s += len(wave) / self.feature_set.sample_rate
        pa, pb = self._ina_patches(wave)
        return ClipComponents(np.concatenate(rows), recipe_logit(pa, pb, frame_log_energy(wave)),
                              {name: np.concatenate(logits) for name, logits in exports.items()})


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Weights (..., bias) of a logistic regression, classes weighted equally (Newton's method, a small L2)."""
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1.0 - y.mean()))
    x = np.c_[x, np.ones(len(x))]
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = sigmoid(x @ w)
        grad = x.T @ (weight * (p - y)) + l2 * w
        hess = x.T @ (x * (weight * p * (1 - p))[:, None]) + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def candidates(fit_clips: list[ClipComponents], fit_labels: np.ndarray, exports: tuple[str, ...] = ()
               ) -> tuple[dict[str, Callable[[ClipComponents], float]], dict[str, list[float]]]:
    """Each candidate (one clip's components -> its p_female), and the weights fitted on ``fit_clips``.

    ``exports``: the ``--model`` names, each pooled as ``shipped`` is (mean p of its blocks).
    """
    clip_x = np.array([[c.blocks[:, SHIPPED].mean(), c.blocks[:, INA_34].mean()] for c in fit_clips])
    w_clip = fit_logistic(clip_x, fit_labels)
    block_x = np.concatenate([c.blocks[:, [SHIPPED, INA_34]] for c in fit_clips])
    w_block = fit_logistic(block_x, np.concatenate([[y] * len(c.blocks) for c, y in zip(fit_clips, fit_labels,
                                                                                          strict=True)]))

    def fit_clip(c: ClipComponents) -> float:
        return float(sigmoid(w_clip[0] * c.blocks[:, SHIPPED].mean() + w_clip[1] * c.blocks[:, INA_34].mean()
                             + w_clip[2]))

    pools = {
        "shipped": lambda c: float(sigmoid(c.blocks[:, SHIPPED]).mean()),
        "ina_step68_p": lambda c: float(np.nanmean(sigmoid(c.blocks[:, INA_68]))),
        "ina_step34_p": lambda c: float(sigmoid(c.blocks[:, INA_34]).mean()),
        "ina_step34_logit": lambda c: float(sigmoid(c.blocks[:, INA_34].mean())),
        "ina_recipe": lambda c: float(sigmoid(c.ina_recipe)),
        "fuse_mean_logit": lambda c: float(sigmoid((c.blocks[:, SHIPPED] + c.blocks[:, INA_34]).mean() / 2)),
        "fuse_recipe_mean_logit": lambda c: float(sigmoid((c.blocks[:, SHIPPED].mean() + c.ina_recipe) / 2)),
        "fuse_fit_clip": fit_clip,
        "fuse_fit_block": lambda c: float(sigmoid(c.blocks[:, [SHIPPED, INA_34]] @ w_block[:2] + w_block[2]).mean()),
    }
    assert tuple(pools) == BUILT_IN and not set(exports) & set(pools)
    pools.update({name: (lambda c, name=name: float(sigmoid(c.exports[name]).mean())) for name in exports})
    return pools, {"fuse_fit_clip": w_clip.tolist(), "fuse_fit_block": w_block.tolist()}


def score(p_of: Callable[[ClipComponents], float], comps: list, labels: np.ndarray, emotions: list | None) -> dict:
    """Balanced accuracy (no answer: wrong) and male recall on the goal emotions of one candidate."""
    return score_p(np.array([np.nan if c is None else p_of(c) for c in comps]), labels, emotions)


def score_p(p: np.ndarray, labels: np.ndarray, emotions: list | None) -> dict:
    """``score`` of the clips' p_female (NaN: no answer, counted wrong)."""
    from model.evaluate import evaluation

    p = common.unanswered_as_wrong(p, labels)
    out = {"balanced_accuracy": evaluation.balanced_accuracy(p, labels)}
    for emotion in EMOTIONS if emotions else ():
        men = (np.array(emotions) == emotion) & (labels == 0)
        if men.any():
            out[f"{emotion}_male_recall"] = float((p[men] < 0.5).mean())
    return out


def score_table(pools: dict[str, Callable[[ClipComponents], float]], comps: dict[str, list],
                peer: dict[str, np.ndarray], sets: dict[str, tuple[list, np.ndarray, list | None]]) -> dict:
    """{candidate: {set: scores}}: each pool on each set's components, then the peer's row when it ran.

    Args:
      pools: the candidates (``candidates``).
      comps: per set, each clip's components (None: no answer).
      peer: per set, the peer's p_female of each clip (empty when the peer did not run).
      sets: per set, (paths, labels, emotions or None).
    """
    table = {cand: {name: score(p_of, comps[name], labels, emotions) for name, (_, labels, emotions) in sets.items()}
             for cand, p_of in pools.items()}
    if peer:
        table[common.PEER] = {name: score_p(peer[name], labels, emotions)
                              for name, (_, labels, emotions) in sets.items()}
    return table


def main(argv: list[str]) -> None:
    del argv
    start = time.time()
    if not FLAGS.ina_model or not os.path.isdir(FLAGS.ina_model) or not FLAGS.calm_data_dir:
        print("SKIPPED: needs --ina_model (python -m model.export.ina ...) and --calm_data_dir (a preprocess output)")
        common.print_json({"skipped": "no --ina_model or --calm_data_dir"})
        return
    exports = common.named_exports(FLAGS.model)
    taken = [name for name in exports if name in (*BUILT_IN, "ina", common.PEER)]
    if taken:
        raise app.UsageError(f"--model={taken[0]}=...: {taken[0]!r} names a built-in candidate; choose another")
    model = ComponentClassifier(FLAGS.shipped_model, FLAGS.ina_model, exports)
    sets: dict[str, tuple[list[str], np.ndarray, list | None]] = {}
    for split in ("validation", "test"):
        clips, sources = common.held_out_clips(FLAGS.calm_data_dir, split)
        ids = sorted(clips)[: FLAGS.limit or None]
        sets[f"calm_{split}"] = ([common.locate(c, sources) for c in ids], np.array([clips[c] for c in ids]), None)
    if os.path.isdir(FLAGS.expressive_dir):
        table = attributes.load_attributes([FLAGS.expressive_dir])
        for locale_dir in attributes.locale_dirs(FLAGS.expressive_dir):
            clips = common.labelled_clips(locale_dir)[: FLAGS.limit or None]
            emotions = attributes.attribute_columns(table, [c.clip_id for c in clips]).get("emotion")
            sets[os.path.basename(locale_dir)] = ([c.audio_path for c in clips], np.array([c.label for c in clips]),
                                                  emotions)
    run_peer = FLAGS.peer and os.path.exists(common.PEER_PYTHON)
    if FLAGS.peer and not run_peer:
        print(common.PEER_MISSING)
    comps, peer = {}, {}
    for name, (paths, _, _) in sets.items():
        comps[name] = list(classifier.map_in_order(model.components, paths, FLAGS.workers, 32))
        if run_peer:
            t = time.perf_counter()
            peer[name] = common.peer_scores(paths)
            model.seconds[common.PEER] = model.seconds.get(common.PEER, 0.0) + time.perf_counter() - t
        print(f"{name}: {len(paths)} clips", flush=True)
    fit = [(c, y) for c, y in zip(comps["calm_validation"], sets["calm_validation"][1], strict=True) if c is not None]
    pools, weights = candidates([c for c, _ in fit], np.array([y for _, y in fit]), tuple(exports))
    table = score_table(pools, comps, peer, sets)
    columns = [(name, key) for name, cells in table["shipped"].items() for key in cells]
    label = {k: "bal" if k == "balanced_accuracy" else k.split("_")[0][:5] + " M" for _, k in columns}
    print("\n" + f"{'candidate':<24}" + "".join(f"{n[:8] + ' ' + label[k]:>17}" for n, k in columns))
    for cand, by_set in table.items():
        print(f"{cand:<24}" + "".join(f"{by_set[n][k]:>17.3f}" for n, k in columns))
    print("(balanced clip accuracy; 'M': male recall; calm_validation is what the fits saw)")
    real_time = {name: model.audio_s / seconds for name, seconds in model.seconds.items() if seconds > 0}
    print(f"seconds in the models over the {model.audio_s:.0f} s of audio the models answered: " + ", ".join(
        f"{name} {seconds:.1f} ({real_time.get(name, 0):.0f}x real time)" for name, seconds in model.seconds.items())
        + f" (ours: time inside each model on the speech segments only, summed over {FLAGS.workers} worker threads, "
        f"no decoding or Silero; ina: two calls per window; {common.PEER}: its whole process's wall time on every "
        "file, decoding, its own segmenter and start-ups included: not the same measure)")
    common.print_json({"candidates": table, "fit_weights": weights, "model_seconds": model.seconds,
                       "audio_s": model.audio_s, "real_time": real_time, "wall_s": round(time.time() - start, 1)},
                      digits=4)


if __name__ == "__main__":
    define_flags()
    app.run(main)
