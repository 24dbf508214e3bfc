r"""Waveform SNR against the training augmentation's noise level (``--noise_snr_db``, issue 21).

The training input adds noise to features, not to waveforms
(``augment.spectral_changes``): a floor whose mean magnitude is the block's
mean magnitude times 10^(-snr/20). People, and ``benchmarks.robustness``,
speak of waveform SNR: the clip's power over the noise's. The two differ by
how speech and noise spread over the bins: speech puts its power in a few
low, strong cells, white noise spreads it evenly (and pre-emphasis lifts its
highs), so at the same power the noise's mean magnitude is much the larger.

For each real clip (decoded to 16 kHz) and each ``--snr_db``, white Gaussian
noise at that waveform SNR over the whole clip (as ``benchmarks.robustness``
makes it) is run alone through the front end the job runs, both are cut into
blocks as the job cuts them, and for each block the silence rule keeps (the
blocks training sees) the feature-domain SNR is ``20 log10(the block's mean
magnitude / the noise's in the same block)``: what the augmentation, which
sets its level per block, would need as ``--noise_snr_db`` to add a floor of
that mean magnitude. Prints, per feature set and waveform SNR, the median and
10th/90th percentiles over those blocks, the share of their cells where the
noise is the stronger, and the share of ``--train_range``'s uniform draws at
least as noisy as the median. The last line is one JSON object.

Usage:
  python -m benchmarks.noise_level [--clips=60] [--snr_db=0,10,20,30] [--train_range=-5,30]
"""

from __future__ import annotations

import tempfile

import numpy as np
from absl import app, flags

from benchmarks import common
from pipeline import audio, augment, features, frontend

FLAGS = flags.FLAGS
# The sets measured here: 16 kHz (the rate clips are decoded at) and one part (one unit of magnitude).
FEATURE_SETS = {fs.name: fs for fs in (features.LOG_MEL, features.INA_MEL)}


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs)."""
    flags.DEFINE_integer("clips", 60, "Real clips (one per speaker, half of each gender; else generated ones).")
    flags.DEFINE_string("data", common.DEFAULT_DATA, "A Common Voice release root.")
    flags.DEFINE_list("snr_db", ["0", "10", "20", "30"], "Waveform SNRs, dB.")
    flags.DEFINE_multi_enum("feature_sets", [features.LOG_MEL.name, features.INA_MEL.name], list(FEATURE_SETS),
                            "Feature sets (16 kHz, one part each).")
    flags.DEFINE_list("train_range", ["-5", "30"], "A --noise_snr_db range: the share of its draws at least as "
                      "noisy as each median is printed.")
    flags.DEFINE_integer("seed", 0, "Seeds the noise.")


def white_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise at ``snr_db`` below the waveform's power (``benchmarks.robustness``'s noise_10db at 10)."""
    rms = np.sqrt(np.mean(np.square(waveform, dtype=np.float64)) + 1e-12)
    return (rng.normal(size=waveform.shape) * rms * 10 ** (-snr_db / 20)).astype(np.float32)


def feature_snr(waveform: np.ndarray, noise: np.ndarray, feature_set: features.FeatureSet
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per block the silence rule keeps: the feature-domain SNR of ``noise`` against ``waveform`` (dB), and the
    share of the block's cells the noise outweighs (two float arrays, empty for a clip without such a block)."""
    speech_blocks, voiced = frontend.waveform_to_blocks(waveform, feature_set)
    noise_blocks, _ = frontend.waveform_to_blocks(noise, feature_set)
    speech = augment.magnitudes(speech_blocks[voiced], feature_set).numpy()
    alone = augment.magnitudes(noise_blocks[voiced], feature_set).numpy()
    snr = 20 * np.log10(speech.mean(axis=(1, 2)) / alone.mean(axis=(1, 2)))
    return snr, (alone > speech).mean(axis=(1, 2))


def main(argv: list[str]) -> None:
    del argv
    snrs = [float(s) for s in FLAGS.snr_db]
    lo, hi = (float(v) for v in FLAGS.train_range)
    sets = [FEATURE_SETS[name] for name in dict.fromkeys(FLAGS.feature_sets)]
    rng = np.random.default_rng(FLAGS.seed)
    with tempfile.TemporaryDirectory() as tmp:
        clips, source = common.load_clips(FLAGS.data, FLAGS.clips, tmp)
        waves = []
        for clip in clips:
            try:
                with open(clip.audio_path, "rb") as f:
                    waves.append(audio.decode_audio(f.read(), features.INA_MEL.sample_rate, clip.audio_path))
            except (OSError, audio.AudioError) as exc:
                print(f"skipped {clip.audio_path}: {exc}")
    print(f"{len(waves)} clips: {source}")
    result: dict = {"clips": len(waves), "source": source, "train_range": [lo, hi], "by_feature_set": {}}
    print(f"{'features':<10}{'waveform SNR':>14}{'feature SNR: median':>21}{'p10':>7}{'p90':>7}"
          f"{'noise > speech':>16}{'draws as noisy':>16}")
    for fs in sets:
        rows = {}
        for snr in snrs:
            per_clip = [feature_snr(w, white_noise(w, snr, rng), fs) for w in waves]
            snr_db = np.concatenate([db for db, _ in per_clip])
            shares = np.concatenate([share for _, share in per_clip])
            if not len(snr_db):
                raise app.UsageError("no clip has a block the silence rule keeps")
            median = float(np.median(snr_db))
            # Uniform draws in [lo, hi] at or below the median: the training blocks at least this noisy.
            as_noisy = float(np.clip((median - lo) / (hi - lo), 0.0, 1.0)) if hi > lo else float(lo <= median)
            rows[snr] = {"blocks": len(snr_db), "median_db": median, "p10_db": float(np.percentile(snr_db, 10)),
                         "p90_db": float(np.percentile(snr_db, 90)), "noise_cells": float(shares.mean()),
                         "train_draws_as_noisy": as_noisy}
            r = rows[snr]
            print(f"{fs.name:<10}{snr:>14.0f}{median:>21.1f}{r['p10_db']:>7.1f}{r['p90_db']:>7.1f}"
                  f"{r['noise_cells']:>16.2f}{r['train_draws_as_noisy']:>16.2f}")
        result["by_feature_set"][fs.name] = {f"{snr:g}": row for snr, row in rows.items()}
    print(f"(feature SNR: --noise_snr_db's units; 'draws as noisy': the share of --noise_snr_db={lo:g},{hi:g} "
          "draws at or below the median)")
    common.print_json(result, digits=4)


if __name__ == "__main__":
    define_flags()
    app.run(main)
