r"""Accuracy under other recording conditions, model by model, side by side.

Takes the held-out clips of a preprocessed directory (one split, the same
speakers the models never saw), changes each waveform as a condition would,
and classifies it with each exported model's LiteRT graph (what ``predict``
runs). Reports balanced clip accuracy per condition and model, and, when an
attribute TSV (``emotion.tsv``, see ``pipeline.attributes``) sits beside the
data's sources or is named by ``--attributes``, male and female recall per
attribute value, condition and model; the last line is JSON. Conditions:

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
  python -m benchmarks.robustness --data_dir=/tmp/vg_logmel_all --split=test \
      --model=shipped=model/pretrained --model=tilt=/tmp/runs/aug_tilt/export
"""

from __future__ import annotations

import io

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported

import numpy as np
import soundfile
import soxr
from absl import app, flags

from benchmarks import common
from model.evaluate import evaluation
from model.predict import classifier, export_format
from pipeline import attributes, audio

FLAGS = flags.FLAGS


def one_pole(x: np.ndarray, a: float) -> np.ndarray:
    """y[n] = a y[n-1] + (1 - a) x[n]: a one-pole low-pass."""
    y = np.empty_like(x)
    acc = 0.0
    for i, v in enumerate(x):  # short clips; clarity over speed
        acc = a * acc + (1 - a) * v
        y[i] = acc
    return y


def conditions(rate: int, rng: np.random.Generator) -> dict:
    """Condition name -> function changing a waveform at ``rate`` as that condition would."""
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


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_string("data_dir", None, "An output of beam_jobs.preprocess.", required=True)
    flags.DEFINE_string("split", "test", "The split whose clips are classified.")
    flags.DEFINE_multi_string("model", None, "name=export_dir (repeatable).", required=True)
    flags.DEFINE_integer("seed", 0, "Seeds the added noise.")
    flags.DEFINE_multi_string("attributes", [], "An attribute TSV to break results down by (besides those found "
                              "beside the data's sources).")


def classify_all(models: dict, conds: dict) -> tuple[dict, np.ndarray, dict[str, list]]:
    """p_female of every held-out clip under every condition and model (NaN: no answer), the labels, and
    each attribute's value per clip (``pipeline.attributes``)."""
    rate = next(iter(models.values())).sample_rate
    clips, sources = common.held_out_clips(FLAGS.data_dir, FLAGS.split)
    p = {(c, m): [] for c in conds for m in models}
    labels, ids = [], []
    for clip_id, label in sorted(clips.items()):
        path = common.locate(clip_id, sources)
        if path is None:
            continue
        clean = audio.read_audio_file(path, rate)
        labels.append(label)
        ids.append(clip_id)
        for cname, change in conds.items():
            wave = change(clean)
            for mname, model in models.items():
                result = model.classify_waveform(wave)
                # A clip the condition made unusable counts as wrong (a user gets no answer).
                p[(cname, mname)].append(np.nan if result.error else result.p_female)
    table = attributes.load_attributes(sources, FLAGS.attributes)
    return p, np.array(labels), attributes.attribute_columns(table, ids)


def by_attribute(p: dict, labels: np.ndarray, columns: dict[str, list]) -> dict:
    """{attribute: {value: {condition: {model: cell}}}}: clips, balanced accuracy, male and female recall."""
    out: dict = {}
    for name, values in columns.items():
        for (cname, mname), scores in p.items():
            scores = np.array(scores)
            answered = common.unanswered_as_wrong(scores, labels)
            clips = evaluation.ClipPredictions(np.arange(len(labels)), answered, labels, {name: np.array(values)})
            for value, cell in evaluation.group_metrics(clips)[name].items():
                out.setdefault(name, {}).setdefault(value, {}).setdefault(cname, {})[mname] = {
                    k: cell[k] for k in ("clips", "balanced_accuracy", "male_recall", "female_recall")}
    return out


def print_by_attribute(breakdown: dict, names: list[str]) -> None:
    for attribute, values in breakdown.items():
        print(f"\nby {attribute} (male recall / female recall)")
        print(f"{attribute:<12}{'condition':<12}" + "".join(f"{n:>14}" for n in names))
        for value, conds in sorted(values.items()):
            for cname, row in conds.items():
                cells = ("/".join("-" if row[n][k] is None else f"{row[n][k]:.2f}" for k in ("male_recall",
                                                                                          "female_recall"))
                         for n in names)
                print(f"{value:<12}{cname:<12}" + "".join(f"{c:>14}" for c in cells))


def main(argv: list[str]) -> None:
    del argv
    models = {}
    for name, path in common.named_exports(FLAGS.model).items():
        models[name] = classifier.Classifier(export_format.resolve_model_dir(path))
    rate = next(iter(models.values())).sample_rate
    p, labels, columns = classify_all(models, conditions(rate, np.random.default_rng(FLAGS.seed)))
    table, unusable = {}, {}
    for (cname, mname), values in p.items():
        values = np.array(values)
        wrong = common.unanswered_as_wrong(values, labels)
        table.setdefault(cname, {})[mname] = evaluation.balanced_accuracy(wrong, labels)
        unusable[cname] = int(np.isnan(values).sum())
    names = list(models)
    print(f"balanced clip accuracy on {len(labels)} {FLAGS.split} clips ({FLAGS.data_dir})")
    print(f"{'condition':<12}" + "".join(f"{n:>12}" for n in names) + f"{'unusable':>10}")
    for cname, row in table.items():
        print(f"{cname:<12}" + "".join(f"{row[n]:>12.4f}" for n in names) + f"{unusable[cname]:>10}")
    means = {n: float(np.mean([table[c][n] for c in table if c != "clean"])) for n in names}
    print(f"{'mean(other)':<12}" + "".join(f"{means[n]:>12.4f}" for n in names))
    breakdown = by_attribute(p, labels, columns)
    print_by_attribute(breakdown, names)
    common.print_json({"split": FLAGS.split, "clips": int(len(labels)), "balanced_clip_accuracy": table,
                       "unusable_clips": unusable, "mean_other_conditions": means, "by_attribute": breakdown})


if __name__ == "__main__":
    define_flags()
    app.run(main)
