r"""Our TF ops for inaSpeechSegmenter's front end (``features.INA_MEL``) against the wheel's own function.

inaSpeechSegmenter 0.6.8 (MIT) computes its gender CNN's input, a log mel
spectrum, with its own feature function (``benchmarks/peers/ina_features_peer.py``
loads and calls it; nothing of it is in this module). This
benchmark decodes real clips to 16 kHz float32 (as ina's ``read_wav`` gives
them: [-1, 1]), runs that function from the pinned wheel and
``pipeline.spectrogram.compute_features(wave, INA_MEL)`` (eagerly and traced),
and prints the largest absolute difference of the log mel per clip (goal:
<= 1e-3, issue 21) and both speeds on one core.

The wheel is a build-time dependency, never imported by the package: give
``--wheel`` (a downloaded ``inaSpeechSegmenter-0.6.8-py3-none-any.whl``), or it
is fetched with ``pip download --no-deps``; without it the benchmark says so
and stops. Its module needs two numpy 2 spellings it predates
(``numpy.lib.pad``, ``numpy.int``): they are provided for the call only.

``--write_fixture=PATH`` also writes the committed test fixture
(``tests/pipeline/data/ina_mel_fixture.npz``): a generated 1.3 s voice and the
wheel's log mel of it, so ``make test`` checks the front end without the wheel.

Usage:
  python -m benchmarks.ina_features [--clips=40] [--wheel=PATH] [--write_fixture=PATH]
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import common
from benchmarks.peers.ina_features_peer import WHEEL, fetch_wheel, load_peer, peer_log_mel

FLAGS = flags.FLAGS
GOAL_MAX_ABS = 1e-3
FIXTURE_SECONDS = 1.3
SILENCE_POWER = 1e-30  # bands below this power are left out of the comparison (log -69.1)


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("clips", 40, "Real clips to compare on.")
    flags.DEFINE_string("data", common.DEFAULT_DATA, "A Common Voice release root (else clips are generated).")
    flags.DEFINE_string("wheel", None, f"The {WHEEL} wheel; default: pip download it.")
    flags.DEFINE_string("write_fixture", None, "Also write the test fixture (a generated voice, the wheel's log mel).")


def fixture_voice() -> np.ndarray:
    """The fixture's waveform: a generated male voice, 1.3 s at 16 kHz, quantised to int16 steps."""
    from beam_jobs import sample_corpus

    rng = np.random.default_rng(21)
    voice = sample_corpus.synthesize(sample_corpus.make_speaker(rng, True, 21), FIXTURE_SECONDS, rng, 16000)
    return (np.round(np.clip(voice, -1, 1) * 32767) / 32768).astype(np.float32)


def compare(peer, waves: list[np.ndarray]) -> dict:
    """Ours against ina's per clip (ina's bands of power >= SILENCE_POWER), float64 and float32 FFT; speeds.

    For the float32 FFT (what LiteRT runs) also the share of compared values
    off by more than the goal, and the least distance (dB) below its frame's
    loudest band of any of them.
    """
    import dataclasses

    import tensorflow as tf

    from pipeline import features, spectrogram

    exact, single = features.INA_MEL, dataclasses.replace(features.INA_MEL, fft_float64=False)

    def traced_for(fs):
        fn = tf.function(lambda w: spectrogram.compute_features(w, fs), input_signature=[tf.TensorSpec([None], tf.float32)])
        fn(tf.zeros(16000))  # trace once
        return fn

    traced, traced_single = traced_for(exact), traced_for(single)
    diffs, single_diffs, ours_s, single_s, theirs_s, audio_s = [], [], 0.0, 0.0, 0.0, 0.0
    non_finite = below_floor = values = single_over = compared_total = 0
    worst_single_db_below_peak = None
    floor = float(np.log(SILENCE_POWER))
    for wave in waves:
        start = time.process_time()
        theirs = peer_log_mel(peer, wave)
        theirs_s += time.process_time() - start
        start = time.process_time()
        ours = traced(tf.constant(wave)).numpy()
        ours_s += time.process_time() - start
        start = time.process_time()
        ours_single = traced_single(tf.constant(wave)).numpy()
        single_s += time.process_time() - start
        eager = spectrogram.compute_features(tf.constant(wave), exact).numpy()
        audio_s += len(wave) / exact.sample_rate
        if ours.shape != theirs.shape:
            raise AssertionError(f"frames: ours {ours.shape}, ina's {theirs.shape}")
        # ina's -inf (an all-zero band) and bands of power under 1e-30 are digital silence: there float32
        # meets its denormal range, which TensorFlow flushes to zero and numpy does not.
        compared = np.isfinite(theirs) & (theirs >= floor)
        non_finite += int((~np.isfinite(theirs)).sum())
        below_floor += int((np.isfinite(theirs) & (theirs < floor)).sum())
        values += theirs.size
        compared_total += int(compared.sum())
        diffs.append(max(float(np.max(np.abs(ours - theirs)[compared], initial=0.0)),
                         float(np.max(np.abs(eager - theirs)[compared], initial=0.0))))
        off = np.where(compared, np.abs(ours_single - theirs), 0.0)
        single_diffs.append(float(off.max(initial=0.0)))
        single_over += int((off > GOAL_MAX_ABS).sum())
        if (off > GOAL_MAX_ABS).any():
            frame_peak = np.max(np.where(compared, theirs, -np.inf), axis=1, keepdims=True)
            below_db = 10 * np.log10(np.e) * (frame_peak - theirs)  # natural-log power -> dB
            least = float(below_db[off > GOAL_MAX_ABS].min())
            worst_single_db_below_peak = least if worst_single_db_below_peak is None else min(
                worst_single_db_below_peak, least)
    return {"clips": len(waves), "max_abs_diff": max(diffs), "median_max_abs_diff": float(np.median(diffs)),
            "clips_over_goal": sum(d > GOAL_MAX_ABS for d in diffs), "ina_non_finite_values": non_finite,
            "ina_values_below_floor": below_floor, "values": values,
            "float32_fft_max_abs_diff": max(single_diffs),
            "float32_fft_median_max_abs_diff": float(np.median(single_diffs)),
            "float32_fft_share_over_goal": single_over / max(1, compared_total),
            "float32_fft_least_db_below_frame_peak_over_goal": worst_single_db_below_peak,
            "ours_x_realtime": audio_s / max(ours_s, 1e-9), "ours_float32_fft_x_realtime": audio_s / max(single_s, 1e-9),
            "ina_x_realtime": audio_s / max(theirs_s, 1e-9)}


def main(argv: list[str]) -> None:
    del argv
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from pipeline import audio

    with tempfile.TemporaryDirectory() as tmp:
        wheel = FLAGS.wheel or fetch_wheel(tmp)
        if wheel is None or not os.path.exists(wheel):
            print(f"SKIPPED: the {WHEEL} wheel is not available (pass --wheel=PATH, or allow pip download)")
            common.print_json({"skipped": f"no {WHEEL} wheel"})
            return
        peer = load_peer(wheel, tmp)
        clips, source = common.load_clips(FLAGS.data, FLAGS.clips, tmp)
        waves = [audio.read_audio_file(c.audio_path, 16000) for c in clips]
        print(f"{len(waves)} clips from {source}; wheel {os.path.basename(wheel)}", flush=True)
        result = compare(peer, waves)
        if FLAGS.write_fixture:
            voice = fixture_voice()
            np.savez_compressed(FLAGS.write_fixture, waveform_int16=np.round(voice * 32768).astype(np.int16),
                                ina_log_mel=peer_log_mel(peer, voice).astype(np.float32))
            print(f"wrote {FLAGS.write_fixture}")
    print(f"log mel, ours against ina's: max |diff| {result['max_abs_diff']:.2e} (median per clip "
          f"{result['median_max_abs_diff']:.2e}; goal <= {GOAL_MAX_ABS:g}; {result['clips_over_goal']} clips over); "
          f"left out as silence: {result['ina_non_finite_values']} -inf values of ina's (all-zero bands) and "
          f"{result['ina_values_below_floor']} of power under {SILENCE_POWER:g}, of {result['values']:,}")
    over_db = result["float32_fft_least_db_below_frame_peak_over_goal"]
    print(f"with a float32 FFT (what LiteRT's builtin ops run): max |diff| {result['float32_fft_max_abs_diff']:.2e} "
          f"(median per clip {result['float32_fft_median_max_abs_diff']:.2e}); "
          f"{100 * result['float32_fft_share_over_goal']:.4f}% of the values over the goal"
          + (f", every one of them at least {over_db:.0f} dB below its frame's loudest band"
             if over_db is not None else ""))
    print(f"speed on one core: ours {result['ours_x_realtime']:.0f}x real time (float32 FFT "
          f"{result['ours_float32_fft_x_realtime']:.0f}x), ina's {result['ina_x_realtime']:.0f}x")
    common.print_json({**result, "source": source, "goal_max_abs_diff": GOAL_MAX_ABS,
                       "goal_met": result["max_abs_diff"] <= GOAL_MAX_ABS})


if __name__ == "__main__":
    define_flags()
    app.run(main)
