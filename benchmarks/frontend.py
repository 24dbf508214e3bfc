r"""The Beam job's numpy front end (``pipeline.frontend``) against the serving graph's (``pipeline.spectrogram``).

The job's workers compute the training blocks with numpy so they never import TensorFlow; the export
computes them in-graph with TensorFlow. This benchmark decodes real clips, runs both on each, and prints
per feature set: the largest absolute difference of the blocks (log units; magnitude for stft_seed), the
share of values more than 1e-3 apart and how far below their frame's loudest bin those lie (float32 FFTs
of two libraries differ in the last bits; quiet bins carry it), silence-mask disagreements (goal: none),
and the CPU per clip of both on one core. It also measures what each front end costs a fresh process
before its first clip (the imports, the tracing, the first call), the start-up every worker of the job pays.

Usage:
  python -m benchmarks.frontend [--clips=100] [--data=../shared/data] [--feature_sets=log_mel,...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import common

FLAGS = flags.FLAGS
CLOSE = 1e-3  # the ina front end's goal against the wheel (issue 21): "the same features" at this scale
# ina's log power bands under this are digital silence (benchmarks.ina_features' rule): there float32 products
# reach the subnormal range, which TensorFlow's matmul flushes to zero and numpy's keeps (a frame of a ~1e-16
# waveform differs by up to 1.1 at log -86); they are counted apart.
SILENCE_POWER = 1e-30

# What a fresh process pays before its first clip: the imports, building the function, one call.
_STARTUP = {
    "tensorflow": ("import numpy as np, tensorflow as tf; from pipeline import features, spectrogram; "
                   "tf.config.threading.set_intra_op_parallelism_threads(1); "
                   "f = spectrogram.make_concrete_block_fn(features.get_feature_set('{fs}')); "
                   "[t.numpy() for t in f(np.zeros(48000, np.float32))]"),
    "numpy": ("import numpy as np; from pipeline import features, frontend; "
              "frontend.waveform_to_blocks(np.zeros(48000, np.float32), features.get_feature_set('{fs}'))"),
}


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("clips", 100, "Clips to compare on.")
    flags.DEFINE_string("data", common.DEFAULT_DATA, "A Common Voice release root (else clips are generated).")
    flags.DEFINE_list("feature_sets", ["log_mel", "stft_seed", "ina_mel", "log_mel_ina"], "Feature sets compared.")
    flags.DEFINE_integer("startup_runs", 3, "Fresh processes per front end for the start-up cost (the least is kept).")


def audible(feature_set, reference: np.ndarray) -> np.ndarray:
    """Which values are compared: all but the ina bands (log power) of digital silence."""
    from pipeline import features

    keep = np.ones(reference.shape, bool)
    start = 0
    for part in feature_set.parts:
        if part.kind is features.FeatureKind.INA_LOG_MEL:
            keep[..., start:start + part.num_bins] = reference[..., start:start + part.num_bins] >= np.log(SILENCE_POWER)
        start += part.num_bins
    return keep


def compare(feature_set, waves: list[np.ndarray]) -> dict:
    """Both front ends on every wave: differences, mask disagreements, CPU per clip (this process's core)."""
    import tensorflow as tf

    from pipeline import frontend, spectrogram

    block_fn = spectrogram.make_concrete_block_fn(feature_set)
    block_fn(np.zeros(feature_set.sample_rate, np.float32))  # traced outside the timing
    frontend.waveform_to_blocks(np.zeros(feature_set.sample_rate, np.float32), feature_set)
    tf_s = np_s = 0.0
    per_clip_max, over, values, silent_values, mask_disagreements, blocks_total = [], 0, 0, 0, 0, 0
    least_db_below_peak = None
    for wave in waves:
        start = time.process_time()
        reference, reference_voiced = (t.numpy() for t in block_fn(wave))
        tf_s += time.process_time() - start
        start = time.process_time()
        ours, voiced = frontend.waveform_to_blocks(wave, feature_set)
        np_s += time.process_time() - start
        if ours.shape != reference.shape:
            raise AssertionError(f"{feature_set.name}: blocks {ours.shape} against {reference.shape}")
        blocks_total += len(ours)
        mask_disagreements += int((voiced != reference_voiced).sum())
        if not len(ours):
            continue
        compared = audible(feature_set, reference)
        silent_values += int((~compared).sum())
        diff = np.where(compared, np.abs(ours - reference), 0.0)
        per_clip_max.append(float(diff.max()))
        values += int(compared.sum())
        off = diff > CLOSE
        over += int(off.sum())
        if off.any():
            # How quiet the moved values are: dB below the loudest bin of their frame (log units -> dB).
            # (log_mel is a log magnitude: 20 log10 e dB per unit, ina's a log power: 10; stft_seed is linear.)
            level = np.log(np.maximum(reference, 1e-30)) if feature_set.kind == "stft_abs_real" else reference
            scale = 10 * np.log10(np.e) if feature_set.kind == "ina_log_mel" else 20 * np.log10(np.e)
            below = scale * (level.max(axis=-1, keepdims=True) - level)
            least = float(below[off].min())
            least_db_below_peak = least if least_db_below_peak is None else min(least, least_db_below_peak)
    del tf
    return {"clips": len(waves), "blocks": blocks_total, "max_abs_diff": max(per_clip_max, default=0.0),
            "median_clip_max_abs_diff": float(np.median(per_clip_max)) if per_clip_max else 0.0,
            "share_over_1e-3": over / max(1, values), "silent_values_left_out": silent_values, "least_db_below_frame_peak_over_1e-3": least_db_below_peak,
            "mask_disagreements": mask_disagreements, "tensorflow_ms_per_clip": 1000 * tf_s / max(1, len(waves)),
            "numpy_ms_per_clip": 1000 * np_s / max(1, len(waves))}


def startup_cpu_s(kind: str, feature_set: str, runs: int) -> float:
    """The least CPU seconds of ``runs`` fresh one-core processes doing ``_STARTUP[kind]``."""
    best = None
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    for _ in range(runs):
        before = common.children_cpu_s()
        subprocess.run([sys.executable, "-c", _STARTUP[kind].format(fs=feature_set)], cwd=common.REPO, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        spent = common.children_cpu_s() - before
        best = spent if best is None else min(best, spent)
    return best


def main(argv: list[str]) -> None:
    del argv
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from beam_jobs import decode, runner
    from pipeline import audio, console, features

    console.silence_tensorflow_startup()
    # Both front ends as the job would run them: the job's malloc settings, one BLAS thread (the
    # workers'), one TensorFlow thread (what the job set before it dropped TensorFlow).
    runner.tune_malloc()
    decode.limit_blas_threads()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips, source = common.load_clips(FLAGS.data, FLAGS.clips, tmp)
        print(f"{len(clips)} clips from {source}", flush=True)
        decoded: dict[int, list[np.ndarray]] = {}
        for name in FLAGS.feature_sets:
            fs = features.get_feature_set(name)
            if fs.sample_rate not in decoded:
                decoded[fs.sample_rate] = [audio.read_audio_file(c.audio_path, fs.sample_rate) for c in clips]
            results[name] = compare(fs, decoded[fs.sample_rate])
            r = results[name]
            least = r["least_db_below_frame_peak_over_1e-3"]
            print(f"{name:12s} {r['blocks']:6d} blocks: max |diff| {r['max_abs_diff']:.2e} (median per clip "
                  f"{r['median_clip_max_abs_diff']:.2e}); {100 * r['share_over_1e-3']:.4f}% of values over 1e-3"
                  + (f", each >= {least:.0f} dB below its frame's peak" if least is not None else "")
                  + (f" ({r['silent_values_left_out']} values of digital silence left out)"
                     if r["silent_values_left_out"] else "")
                  + f"; silence mask: {r['mask_disagreements']} disagreements; CPU per clip: tensorflow "
                  f"{r['tensorflow_ms_per_clip']:.2f} ms, numpy {r['numpy_ms_per_clip']:.2f} ms "
                  f"({r['tensorflow_ms_per_clip'] / max(r['numpy_ms_per_clip'], 1e-9):.2f}x)", flush=True)
    first = FLAGS.feature_sets[0]
    startup = {kind: startup_cpu_s(kind, first, FLAGS.startup_runs) for kind in _STARTUP}
    print(f"a fresh process before its first {first} clip (least of {FLAGS.startup_runs}): tensorflow "
          f"{startup['tensorflow']:.2f} s CPU, numpy {startup['numpy']:.2f} s CPU")
    common.print_json({"source": source, "feature_sets": results, "startup_cpu_s": startup,
                       "mask_disagreements": sum(r["mask_disagreements"] for r in results.values())})


if __name__ == "__main__":
    define_flags()
    app.run(main)
