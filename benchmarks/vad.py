r"""Speech detection compared: energy rule vs WebRTC vs Silero, on the same generated recordings.

Each recording (``benchmarks.recordings``) is a conversation of male and
female turns with pauses; each condition changes it the same way for every
detector. Reports, per detector and condition, frame-level precision, recall
and F1 of "speech" on the 10 ms grid, before and after ``speech_regions``
(pauses < 0.3 s bridged, speech < 0.25 s dropped), and the cost as a real-time
factor on one core (seconds of audio per CPU-second of this process; the ONNX
session is pinned to one thread). Conditions:

  clean        the conversation over a quiet room tone
  white_20/10  white noise at 20 / 10 dB SNR under everything
  pink_20/10   pink noise (1/f)
  babble_20/10 six other speakers talking at once (speech, but not the conversation's)
  music        music-like interludes (tones, chords, drums) between turns, half of the gaps

Truth: every frame inside a male or female turn is speech, including the
short pauses between its words (a turn is what a segmenter should return as
one region, so a detector that marks those gaps loses recall before
smoothing); pauses between turns, noise and music are not. Detectors run in
turn on each recording, so a busy machine slows them alike.

Usage:
  python -m benchmarks.vad [--recordings=4] [--seconds=60] [--data_dir=DIR ...]
"""

from __future__ import annotations

import os

import numpy as np
from absl import app, flags

from benchmarks import common, recordings
from model.predict import vad

FLAGS = flags.FLAGS

# name -> (method, options): the detectors compared.
DETECTORS = {
    "energy": ("energy", {}),
    "webrtc_a1": ("webrtc", {"aggressiveness": 1}),
    "webrtc_a2": ("webrtc", {"aggressiveness": 2}),
    "webrtc_a3": ("webrtc", {"aggressiveness": 3}),
    "silero_0.5": ("silero", {"threshold": 0.5}),
    "silero_0.5_stream": ("silero", {"threshold": 0.5, "chunk_s": None}),
    "silero_0.7": ("silero", {"threshold": 0.7}),
}
# name -> (noise, SNR dB, interludes)
CONDITIONS = {
    "clean": (None, None, ()),
    "white_20": ("white", 20.0, ()),
    "white_10": ("white", 10.0, ()),
    "pink_20": ("pink", 20.0, ()),
    "pink_10": ("pink", 10.0, ()),
    "babble_20": ("babble", 20.0, ()),
    "babble_10": ("babble", 10.0, ()),
    "music": (None, None, ("music",)),
}
MIN_SPEECH_S, MIN_PAUSE_S = 0.25, 0.3  # the smoothing of the "regions" figures
BABBLE_SPEAKERS = 4  # per gender, kept out of every conversation
ALL_SPEECH = "all_speech"  # the baseline that calls every frame speech


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("recordings", 4, "Recordings per condition.")
    flags.DEFINE_float("seconds", 60.0, "Seconds per recording.")
    flags.DEFINE_multi_string("data_dir", list(recordings.DEFAULT_DATA_DIRS),
                              "Corpora in the Common Voice layout; synthetic voices when none is present.")
    flags.DEFINE_integer("speakers", 20, "Speakers per gender in the conversations.")
    flags.DEFINE_list("detectors", list(DETECTORS), "Which detectors to run.")
    flags.DEFINE_integer("seed", 0, "Seeds speakers, recordings and noise.")


def scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """True/false positives and negatives of a speech mask."""
    return {"tp": int(np.sum(predicted & truth)), "fp": int(np.sum(predicted & ~truth)),
            "fn": int(np.sum(~predicted & truth)), "tn": int(np.sum(~predicted & ~truth))}


def prf(counts: dict[str, int]) -> dict[str, float]:
    """Precision, recall, F1 and balanced accuracy from summed counts (1.0 where nothing was to be found or claimed).

    Most frames of a conversation are speech (~85% here), so F1 of "speech"
    rewards a detector that says speech everywhere (see the ``all_speech``
    row); balanced accuracy, the mean of recall and of the non-speech
    frames' specificity, gives that detector 0.5.
    """
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    specificity = tn / (tn + fp) if tn + fp else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "balanced_accuracy": (recall + specificity) / 2}


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


def main(argv: list[str]) -> None:
    # The benchmark's sequence (sources, recordings, detectors, tables) in one place, as the other benchmarks' mains.
    del argv
    unknown = set(FLAGS.detectors) - set(DETECTORS)
    if unknown:
        raise app.UsageError(f"unknown detectors {sorted(unknown)}; choose from {list(DETECTORS)}")
    detectors = {name: DETECTORS[name] for name in FLAGS.detectors}
    rng = np.random.default_rng(FLAGS.seed)
    male, female, source = recordings.load_sources(FLAGS.data_dir, rng, FLAGS.speakers + BABBLE_SPEAKERS)
    # The babble talkers are other people: speakers never heard in a conversation.
    babble = [clip for speaker in male[-BABBLE_SPEAKERS:] + female[-BABBLE_SPEAKERS:] for clip in speaker]
    male, female = male[:-BABBLE_SPEAKERS] or male, female[:-BABBLE_SPEAKERS] or female
    print(f"speech: {source}; {len(male)} male and {len(female)} female speakers, "
          f"{FLAGS.recordings} x {FLAGS.seconds:g} s per condition")

    frames: dict = {}  # (detector, condition) -> counts, raw and after speech_regions
    smoothed: dict = {}
    cpu_s = dict.fromkeys(detectors, 0.0)
    audio_s = 0.0
    agreement = {"frames": 0, "equal": 0}  # silero batched vs one exact stream
    for index in range(FLAGS.recordings):
        for cname, (noise, snr, interludes) in CONDITIONS.items():
            # The same seed per recording: every condition but music hears the same conversation.
            rec_rng = np.random.default_rng([FLAGS.seed, index, int(bool(interludes))])
            rec = recordings.make_recording(rec_rng, male, female, seconds=FLAGS.seconds, interludes=interludes)
            if noise:
                rec = recordings.add_noise(rec, noise, snr, np.random.default_rng([FLAGS.seed, index, 7]), babble)
            truth = recordings.truth_frames(rec)
            audio_s += rec.seconds
            _add(frames.setdefault((ALL_SPEECH, cname), {}), scores(np.ones_like(truth), truth))
            masks = {}
            for name, (method, options) in detectors.items():
                start = common.process_cpu_s()
                masks[name] = vad.speech_frames(rec.waveform, method, rec.sample_rate, **options)
                cpu_s[name] += common.process_cpu_s() - start
                _add(frames.setdefault((name, cname), {}), scores(masks[name], truth))
                regions = vad.speech_regions(masks[name], MIN_SPEECH_S, MIN_PAUSE_S)
                _add(smoothed.setdefault((name, cname), {}), scores(vad.regions_to_frames(regions, len(truth)), truth))
            if "silero_0.5" in masks and "silero_0.5_stream" in masks:
                agreement["frames"] += len(truth)
                agreement["equal"] += int(np.sum(masks["silero_0.5"] == masks["silero_0.5_stream"]))

    names, conds = list(detectors), list(CONDITIONS)
    rtf = {name: audio_s / max(cpu_s[name], 1e-9) for name in names}
    table = {name: {c: prf(frames[(name, c)]) for c in conds} for name in [ALL_SPEECH, *names]}
    table_regions = {name: {c: prf(smoothed[(name, c)]) for c in conds} for name in names}
    overall = {}
    for name in [ALL_SPEECH, *names]:
        total: dict[str, int] = {}
        for c in conds:
            _add(total, frames[(name, c)])
        overall[name] = prf(total)
    smoothing = f"after speech_regions(min_speech_s={MIN_SPEECH_S}, min_pause_s={MIN_PAUSE_S})"
    for metric, title, tab in (("f1", "frame F1 (speech)", table), ("balanced_accuracy", "frame balanced accuracy", table),
                               ("f1", f"F1 {smoothing}", table_regions),
                               ("balanced_accuracy", f"balanced accuracy {smoothing}", table_regions)):
        print(f"\n{title}")
        print(f"{'detector':<18}" + "".join(f"{c:>10}" for c in conds) + f"{'all P':>8}{'all R':>8}{'RTF':>8}")
        for name in tab:
            row = overall[name]
            print(f"{name:<18}" + "".join(f"{tab[name][c][metric]:>10.3f}" for c in conds)
                  + f"{row['precision']:>8.3f}{row['recall']:>8.3f}" + (f"{rtf[name]:>8.0f}" if name in rtf else ""))
    same = agreement["equal"] / agreement["frames"] if agreement["frames"] else None
    if same is not None:
        print(f"\nsilero batched (8 s chunks) vs one stream: {100 * same:.2f}% of frames equal")
    print(f"RTF: seconds of audio per CPU-second, one thread ({os.cpu_count()} CPUs here); "
          f"{audio_s:.0f} s of audio per detector")
    common.print_json({"source": source, "recordings": FLAGS.recordings, "seconds": FLAGS.seconds,
                       "audio_s": audio_s, "conditions": conds, "frames": table, "regions": table_regions,
                       "overall": overall, "rtf": rtf, "silero_batched_vs_stream_equal": same})


if __name__ == "__main__":
    define_flags()
    app.run(main)
