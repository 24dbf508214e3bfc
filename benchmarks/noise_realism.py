r"""Does the training noise hurt a model as real noise does? Each ``--noise_color`` against waveform noise.

The training input adds noise to features (``augment.spectral_changes``); the
robustness benchmark adds it to the waveform. A model that has learned to
shrug off the first may still fail the second, if the two do not look alike
to it. This scores a training run's model on every block of the held-out
clips of ``--data_dir``: clean, with white Gaussian noise at ``--snr_db`` added
to the waveform (as ``benchmarks.robustness`` adds it), and with each noise
color of the augmentation added to the clean features *at the same level* (per
block and feature part, the floor's mean magnitude that of the real noise's own
features in that block). A simulation is good
when its column is near the real one. For a ``cnn_ina_fusion`` run, the cnn
and ina branches are scored too (mean logit per clip).

Prints balanced clip accuracy (the mean block logit per clip), and the women's
and men's mean logit. The last line is one JSON object.

Usage:
  python -m benchmarks.noise_realism --model_dir=/tmp/runs/cons1 --data_dir=/tmp/vg_ina03 [--snr_db=10]
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import app, flags

from benchmarks import common, noise_level
from benchmarks.candidates import logit
from model.train import loading
from pipeline import audio, augment, features, frontend
from pipeline import metadata as metadata_lib

FLAGS = flags.FLAGS
BRANCHES = ("cnn_logit", "ina_logit")  # cnn_ina_fusion's named branch outputs


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs)."""
    flags.DEFINE_string("model_dir", None, "A finished `python -m model.train` run.")
    flags.DEFINE_string("data_dir", None, "Its training data (beam_jobs.preprocess output): the held-out clips "
                        "and the normalisation statistics.")
    flags.DEFINE_string("split", "test", "The held-out split scored.")
    flags.DEFINE_float("snr_db", 10.0, "Waveform SNR of the white noise, dB.")
    flags.DEFINE_integer("limit", 0, "At most this many clips (0: all).")
    flags.DEFINE_integer("seed", 0, "Seeds the noise.")


def logits_model(model: keras.Model) -> tuple[keras.Model, list[str]]:
    """A model giving the block logit, and for a fusion its branches' logits too; and the outputs' names."""
    names = ["model"] + [name for name in BRANCHES if any(layer.name == name for layer in model.layers)]
    outputs = [model.output] + [model.get_layer(name).output for name in names[1:]]
    return keras.Model(model.inputs, outputs), names


def simulated(clean: np.ndarray, noise_alone: np.ndarray, feature_set: features.FeatureSet, color: str,
              seed: int) -> np.ndarray:
    """``clean`` raw blocks with the augmentation's ``color`` noise at the level of ``noise_alone``'s.

    Per block and feature part, the SNR given to ``augment.spectral_changes`` is the ratio of the block's mean
    magnitude to the real noise's in the same block, so the floor added has the real noise's mean magnitude.
    """
    out = np.empty_like(clean)
    start = 0
    for part in feature_set.parts:
        stop = start + part.num_bins
        speech = augment.magnitudes(tf.constant(clean[..., start:stop]), part).numpy()
        noise = augment.magnitudes(tf.constant(noise_alone[..., start:stop]), part).numpy()
        for b in range(len(clean)):
            snr = float(20 * np.log10(speech[b].mean() / noise[b].mean()))
            config = augment.AugmentConfig(noise_prob=1.0, noise_snr_db=(snr, snr), noise_color=color)
            out[b, :, start:stop] = augment.spectral_changes(
                tf.constant(clean[b:b + 1, :, start:stop]), tf.constant([seed, b], tf.int64), config, part).numpy()[0]
        start = stop
    return out


def clip_conditions(wave: np.ndarray, feature_set: features.FeatureSet, snr_db: float,
                    rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
    """Raw blocks [blocks, frames, bins] of one clip: clean, real white noise at ``snr_db``, each simulation.

    Empty arrays for a clip shorter than a block.
    """
    def noise() -> np.ndarray:
        return noise_level.white_noise(wave, snr_db, rng)

    def blocks(waveform: np.ndarray) -> np.ndarray:
        raw = frontend.compute_features(waveform, feature_set)
        count = len(raw) // feature_set.block_frames
        return raw[: count * feature_set.block_frames].reshape(count, feature_set.block_frames, -1)

    clean = blocks(wave)
    # The level is measured on one noise and the real condition uses another: no cell is shared.
    noise_alone = blocks(noise())
    result = {"clean": clean, f"waveform_{snr_db:g}db": blocks(wave + noise())}
    for color in augment.NOISE_COLORS:
        result[color] = simulated(clean, noise_alone, feature_set, color, seed)
    return result


def summarise(rows: list[tuple[int, float]]) -> dict:
    """Balanced clip accuracy of per-clip mean logits, and each gender's mean logit."""
    labels = np.array([r[0] for r in rows])
    logits = np.array([r[1] for r in rows])
    women, men = labels == features.FEMALE, labels == features.MALE
    return {"balanced_accuracy": float(0.5 * ((logits[women] > 0).mean() + (logits[men] <= 0).mean())),
            "women_mean_logit": float(logits[women].mean()), "men_mean_logit": float(logits[men].mean())}


def main(argv: list[str]) -> None:
    del argv
    if not FLAGS.model_dir or not FLAGS.data_dir:
        raise app.UsageError("give --model_dir (a training run) and --data_dir (its data)")
    model, feature_set, _ = loading.load_block_model(FLAGS.model_dir)
    normalizer = metadata_lib.Normalizer.from_metadata(metadata_lib.read_metadata(FLAGS.data_dir))
    probe, names = logits_model(model)
    clips, sources = common.held_out_clips(FLAGS.data_dir, FLAGS.split)
    rng = np.random.default_rng(FLAGS.seed)
    rows: dict[tuple[str, str], list] = {}
    scored = 0
    for index, (clip_id, label) in enumerate(sorted(clips.items())[: FLAGS.limit or None]):
        path = common.locate(clip_id, sources)
        if path is None:
            continue
        try:
            wave = audio.read_audio_file(path, feature_set.sample_rate)
        except audio.AudioError as exc:
            print(f"skipped {path}: {exc}")
            continue
        by_condition = clip_conditions(wave, feature_set, FLAGS.snr_db, rng, index)
        if not len(by_condition["clean"]):
            continue
        scored += 1
        for condition, blocks in by_condition.items():
            outputs = probe(normalizer(tf.constant(blocks)), training=False)
            outputs = outputs if isinstance(outputs, list | tuple) else [outputs]  # one output: a tensor
            for name, out in zip(names, outputs, strict=True):
                out = out.numpy().reshape(-1)
                rows.setdefault((name, condition), []).append(
                    (label, float(np.mean(logit(out) if name == "model" else out))))
    labels = {label for (name, _), got in rows.items() if name == "model" for label, _ in got}
    if labels != {features.MALE, features.FEMALE}:
        raise app.UsageError(f"{FLAGS.split} of {FLAGS.data_dir}: {scored} clips scored; both genders are needed")
    result = {"model_dir": FLAGS.model_dir, "clips": scored, "snr_db": FLAGS.snr_db, "scores": {}}
    conditions = list(dict.fromkeys(c for _, c in rows))
    print(f"{scored} {FLAGS.split} clips of {FLAGS.data_dir}; balanced clip accuracy (women's / men's mean logit)")
    print(f"{'output':<12}" + "".join(f"{c:>24}" for c in conditions))
    for name in names:
        cells = {c: summarise(rows[(name, c)]) for c in conditions}
        result["scores"][name] = cells
        print(f"{name:<12}" + "".join(
            f"{cells[c]['balanced_accuracy']:>10.3f} ({cells[c]['women_mean_logit']:+.2f}/{cells[c]['men_mean_logit']:+.2f})"
            for c in conditions))
    print("(flat / white / colored: --noise_color's noise added to the features at the real noise's level)")
    common.print_json(result, digits=4)


if __name__ == "__main__":
    define_flags()
    app.run(main)
