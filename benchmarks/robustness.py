r"""Accuracy under other recording conditions, model by model, side by side.

Takes the held-out clips of a preprocessed directory (one split, the same
speakers the models never saw), changes each waveform as a condition would,
and classifies it with each exported model's LiteRT graph (what ``predict``
runs). Reports balanced clip accuracy per condition and model; the last line
is JSON. Conditions:

  clean       the clip as recorded
  telephone   resampled to 8 kHz and back (band-limited to 4 kHz)
  noise_10db  white noise at 10 dB SNR
  mp3_low     re-encoded as 16 kHz MP3 at about 25 kbit/s
  quiet       -30 dB gain
  bright      pre-emphasis y[n] = x[n] - 0.95 x[n-1] (a brighter, effortful tilt)
  muffled     one-pole low-pass (a duller microphone)
  higher      every frequency 8% higher, F0 and formants (played 8% faster)
  lower       every frequency 8% lower (played 8% slower)

Usage:
  python benchmarks/robustness.py --data_dir=/tmp/vg_logmel_all --split=test \
      --model=shipped=model/pretrained --model=tilt=/tmp/runs/aug_tilt/export
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import sys

import numpy as np
import soundfile
import soxr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

_spec = importlib.util.spec_from_file_location("bench_baselines", os.path.join(REPO, "benchmarks", "baselines.py"))
bench_baselines = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_baselines)

from model import classifier, evaluation  # noqa: E402
from pipeline import audio  # noqa: E402


def one_pole(x: np.ndarray, a: float) -> np.ndarray:
    y = np.empty_like(x)
    acc = 0.0
    for i, v in enumerate(x):  # short clips; clarity over speed
        acc = a * acc + (1 - a) * v
        y[i] = acc
    return y


def conditions(rate: int, rng: np.random.Generator):
    def telephone(x):
        return soxr.resample(soxr.resample(x, rate, 8000), 8000, rate).astype(np.float32)

    def noise(x):
        rms = np.sqrt(np.mean(np.square(x)) + 1e-12)
        return (x + rng.normal(size=x.shape) * rms * 10 ** (-10 / 20)).astype(np.float32)

    def mp3_low(x):
        buf = io.BytesIO()
        soundfile.write(buf, x, rate, format="MP3", subtype="MPEG_LAYER_III",
                       compression_level=0.9, bitrate_mode="CONSTANT")  # ~25 kbit/s at 16 kHz
        return audio.decode_audio(buf.getvalue(), rate, "re-encoded")

    return {
        "clean": lambda x: x,
        "telephone": telephone,
        "noise_10db": noise,
        "mp3_low": mp3_low,
        "quiet": lambda x: (x * 10 ** (-30 / 20)).astype(np.float32),
        "bright": lambda x: np.append(x[:1], x[1:] - 0.95 * x[:-1]).astype(np.float32),
        "muffled": lambda x: one_pole(x, 0.6).astype(np.float32),
        # Reading the samples as if recorded at rate * k and resampling to rate scales every frequency by k.
        "higher": lambda x: soxr.resample(x, int(rate * 1.08), rate).astype(np.float32),
        "lower": lambda x: soxr.resample(x, int(rate * 0.92), rate).astype(np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", required=True, help="name=export_dir (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    models = {}
    for spec in args.model:
        name, path = spec.split("=", 1)
        models[name] = classifier.Classifier(classifier.resolve_model_dir(path))
    rate = next(iter(models.values())).sample_rate
    clips, sources = bench_baselines.split_clips(args.data_dir, args.split)
    rng = np.random.default_rng(args.seed)
    conds = conditions(rate, rng)
    p = {(c, m): [] for c in conds for m in models}
    labels = []
    for clip_id, label in sorted(clips.items()):
        path = bench_baselines.locate(clip_id, sources)
        if path is None:
            continue
        clean = audio.read_audio_file(path, rate)
        labels.append(label)
        for cname, change in conds.items():
            wave = change(clean)
            for mname, model in models.items():
                result = model.classify_waveform(wave)
                # A clip the condition made unusable counts as wrong (a user gets no answer).
                p[(cname, mname)].append(np.nan if result.error else result.p_female)
    labels = np.array(labels)
    table, unusable = {}, {}
    for (cname, mname), values in p.items():
        values = np.array(values)
        wrong = np.where(np.isnan(values), 1 - labels, values)
        table.setdefault(cname, {})[mname] = evaluation.balanced_accuracy(wrong, labels)
        unusable[cname] = int(np.isnan(values).sum())
    names = list(models)
    print(f"balanced clip accuracy on {len(labels)} {args.split} clips ({args.data_dir})")
    print(f"{'condition':<12}" + "".join(f"{n:>12}" for n in names) + f"{'unusable':>10}")
    for cname, row in table.items():
        print(f"{cname:<12}" + "".join(f"{row[n]:>12.4f}" for n in names) + f"{unusable[cname]:>10}")
    means = {n: float(np.mean([table[c][n] for c in table if c != "clean"])) for n in names}
    print(f"{'mean(other)':<12}" + "".join(f"{means[n]:>12.4f}" for n in names))
    print(json.dumps({"split": args.split, "clips": int(len(labels)), "balanced_clip_accuracy": table,
                      "unusable_clips": unusable,
                      "mean_other_conditions": means}))


if __name__ == "__main__":
    main()
