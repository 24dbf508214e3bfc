r"""The simple baseline to beat: median F0 below a threshold means male.

Estimates each clip's median F0 (normalized autocorrelation on 40 ms frames,
voiced frames only) for the clips of one split of a preprocessed directory,
the same held-out speakers the models are evaluated on, and reports the
balanced clip accuracy of the 165 Hz rule (and of the best threshold in
hindsight, an optimistic bound). The last line is JSON.

Usage:
  python -m benchmarks.baselines --data_dir=/tmp/real_logmel [--split=test]
"""

from __future__ import annotations

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported

import numpy as np
from absl import app, flags

from benchmarks import common
from model.evaluate import evaluation
from pipeline import features

FLAGS = flags.FLAGS
RATE = 16000
FRAME, HOP = 640, 160  # 40 ms frames: two periods of 50 Hz
F0_MIN, F0_MAX = 60.0, 400.0


def median_f0(waveform: np.ndarray) -> float:
    """Median F0 (Hz) over voiced frames, NaN when no frame is clearly periodic."""
    if len(waveform) < FRAME:
        return float("nan")
    frames = np.lib.stride_tricks.sliding_window_view(waveform, FRAME)[::HOP]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.square(frames).sum(axis=1)
    loud = energy > 0.1 * np.percentile(energy, 90)
    spectrum = np.fft.rfft(frames[loud], n=2 * FRAME)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[:, :FRAME]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(RATE / F0_MAX), int(RATE / F0_MIN)
    window = ac[:, lo:hi]
    peak = window.max(axis=1, keepdims=True)
    # The shortest lag within 90% of the best one: autocorrelation peaks
    # again at 2x, 3x the period, and taking those halves F0 (octave errors).
    is_local_max = np.zeros_like(window, dtype=bool)
    is_local_max[:, 1:-1] = (window[:, 1:-1] >= window[:, :-2]) & (window[:, 1:-1] >= window[:, 2:])
    candidates = is_local_max & (window >= 0.9 * peak)
    lags = lo + np.where(candidates.any(axis=1), np.argmax(candidates, axis=1), np.argmax(window, axis=1))
    periodic = peak[:, 0] > 0.5
    if not periodic.any():
        return float("nan")
    return float(np.median(RATE / lags[periodic]))


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_string("data_dir", None, "An output of beam_jobs.preprocess.", required=True)
    flags.DEFINE_string("split", "test", "The split whose clips are scored.")
    flags.DEFINE_float("threshold_hz", 165.0, "Median F0 at or above this means female.")


def rule(f0: np.ndarray, threshold_hz: float) -> np.ndarray:
    """1 (female) where the median F0 reaches the threshold; a clip without F0 gets the majority guess (male)."""
    return np.where(~np.isnan(f0), f0 >= threshold_hz, False).astype(float)


def main(argv: list[str]) -> None:
    del argv
    from pipeline import audio

    clips, sources = common.held_out_clips(FLAGS.data_dir, FLAGS.split)
    f0, labels = [], []
    for clip_id, label in sorted(clips.items()):
        path = common.locate(clip_id, sources)
        if path is None:
            continue
        f0.append(median_f0(audio.read_audio_file(path, RATE)))
        labels.append(label)
    f0, labels = np.array(f0), np.array(labels)
    sweep = {t: evaluation.balanced_accuracy(rule(f0, t), labels) for t in range(120, 221, 5)}
    best = max(sweep, key=sweep.get)
    rule_key = f"balanced_clip_accuracy_{int(FLAGS.threshold_hz)}hz"
    result = {"split": FLAGS.split, "clips": int(len(labels)), "no_f0": int(np.isnan(f0).sum()),
              "male_median_f0": float(np.nanmedian(f0[labels == features.MALE])),
              "female_median_f0": float(np.nanmedian(f0[labels == features.FEMALE])),
              rule_key: evaluation.balanced_accuracy(rule(f0, FLAGS.threshold_hz), labels),
              "best_threshold_hz_in_hindsight": best, "balanced_clip_accuracy_best_threshold": sweep[best]}
    print(f"F0 rule on {len(labels)} {FLAGS.split} clips: balanced clip accuracy "
          f"{result[rule_key]:.4f} at {FLAGS.threshold_hz:.0f} Hz; "
          f"{sweep[best]:.4f} at the best threshold in hindsight ({best} Hz)")
    common.print_json(result)


if __name__ == "__main__":
    define_flags()
    app.run(main)
