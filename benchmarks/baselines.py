r"""The simple baseline to beat: median F0 below a threshold means male.

Estimates each clip's median F0 (normalized autocorrelation on 40 ms frames,
voiced frames only) for the clips of one split of a preprocessed directory,
the same held-out speakers the models are evaluated on, and reports the
balanced clip accuracy of the 165 Hz rule (and of the best threshold in
hindsight, an optimistic bound). The last line is JSON.

Usage:
  python benchmarks/baselines.py --data_dir=/tmp/real_logmel [--split=test]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def split_clips(data_dir: str, split: str) -> tuple[dict[str, int], list[str]]:
    """(clip_id -> label of every clip written to ``split``, the job's --cv_dir sources)."""
    import tensorflow as tf

    from pipeline import examples, features, inputs

    meta = json.load(open(os.path.join(data_dir, features.METADATA_FILENAME)))
    fs = features.FeatureSet.from_dict(meta["feature_set"])
    ds = tf.data.TFRecordDataset(inputs.list_shards(data_dir, split), compression_type=features.SHARD_COMPRESSION)
    clips = {}
    for batch in ds.batch(512).map(lambda s: examples.parse_blocks(s, fs)):
        for clip, label in zip(batch[features.CLIP_ID_KEY].numpy(), batch[features.LABEL_KEY].numpy(), strict=True):
            clips[clip.decode()] = int(label)
    return clips, meta["sources"]


def locate(clip_id: str, sources: list[str]) -> str | None:
    """The audio file of ``<locale>/<path>`` under one of the job's --cv_dir sources."""
    locale, path = clip_id.split("/", 1)
    for source in sources:
        for base in (os.path.join(source, locale), source):
            candidate = os.path.join(base, "clips", path)
            if os.path.basename(base) == locale and os.path.exists(candidate):
                return candidate
    return None


def balanced(predicted_female: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted_female[labels == g] == g) for g in (0, 1)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--threshold_hz", type=float, default=165.0)
    args = parser.parse_args()
    from pipeline import audio

    clips, sources = split_clips(args.data_dir, args.split)
    f0, labels = [], []
    for clip_id, label in sorted(clips.items()):
        path = locate(clip_id, sources)
        if path is None:
            continue
        f0.append(median_f0(audio.read_audio_file(path, RATE)))
        labels.append(label)
    f0, labels = np.array(f0), np.array(labels)
    known = ~np.isnan(f0)
    # A clip without a periodic frame gets the majority guess (male), as a user of the rule would.
    rule = np.where(known, f0 >= args.threshold_hz, False).astype(int)
    sweep = {t: balanced(np.where(known, f0 >= t, False).astype(int), labels) for t in range(120, 221, 5)}
    best = max(sweep, key=sweep.get)
    result = {"split": args.split, "clips": int(len(labels)), "no_f0": int((~known).sum()),
              "male_median_f0": float(np.nanmedian(f0[labels == 0])),
              "female_median_f0": float(np.nanmedian(f0[labels == 1])),
              f"balanced_clip_accuracy_{int(args.threshold_hz)}hz": balanced(rule, labels),
              "best_threshold_hz_in_hindsight": best, "balanced_clip_accuracy_best_threshold": sweep[best]}
    print(f"F0 rule on {len(labels)} {args.split} clips: balanced clip accuracy "
          f"{result[f'balanced_clip_accuracy_{int(args.threshold_hz)}hz']:.4f} at {args.threshold_hz:.0f} Hz; "
          f"{sweep[best]:.4f} at the best threshold in hindsight ({best} Hz)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
