"""``predict --segments`` on generated two-speaker recordings: boundaries, genders, speech detection, speed.

    python -m benchmarks.segments [--recordings=6 --seconds=90 --methods=energy,webrtc,silero]

Each recording (``benchmarks.recordings``) alternates male and female turns
of 2-15 s with pauses of 0.2-1.5 s, in five conditions: clean, with music
interludes, with noise interludes, under pink and babble noise at 10 dB SNR,
and far-field (a generated room response of RT60 0.6 s, 15 dB quieter, pink
noise at 15 dB SNR). Real speech from ``../shared/data`` when present (Common Voice,
LibriSpeech, Duke: the corpora the shipped model was trained on, so these
speakers may be training speakers: the gender figure is an upper bound on
unseen voices), else synthetic voices.

Figures, per speech detector and condition, against the issue's goals:
- speech F1: speech vs non-speech on the 10 ms grid (goal >= 0.95), with its
  recall (the share of the clips' sounding frames detected) and precision;
- gender accuracy: the share of true speech time whose predicted segment has
  the right gender, missed speech counting as wrong (goal >= 0.95); and the
  same over the speech time that was detected as speech;
- non-speech gendered: the share of the time outside every turn (pauses,
  music, noise) given a gender (goal <= 0.05);
- gender at changes: the same, on the speech within 1 s of a change of the
  speaker's gender (what holding a turn through odd blocks may cost);
- turns: the share of turns whose start and end both lie within 0.5 s of a
  predicted speech boundary (goal >= 0.90);
- real-time factor: seconds of audio per CPU-second on one core, decoding
  the file (a 16 kHz FLAC) included (goal >= 500), and the cold start of
  ``python -m model.predict --segments`` on a 5 s file (goal <= 0.2 s).
``--sweep`` tries settings of the segmenter with Silero, one field at a time
(default: the HMM's ``turn_switch_prob``). The last line is one JSON object.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile
from absl import app, flags

from benchmarks import common, recordings
from model.predict import classifier, segments, vad

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("recordings", 6, "Recordings per condition.")
    flags.DEFINE_float("seconds", 90.0, "Length of each recording.")
    flags.DEFINE_list("methods", list(vad.METHODS), "Speech detectors to compare.")
    flags.DEFINE_list("data_dirs", list(recordings.DEFAULT_DATA_DIRS), "Corpora the speech comes from.")
    flags.DEFINE_integer("seed", 0, "Seeds the recordings.")
    flags.DEFINE_multi_string("sweep", ["turn_switch_prob=0.5,0.1,0.01,0.001"],
                              "A SegmentConfig field and values to try with --vad=silero, one field at a time "
                              "from the defaults (e.g. min_pause_s=0.15,0.3); repeat the flag for more fields.")

CONDITIONS = {
    "clean": {},
    "music interludes": {"interludes": ("music",)},
    "noise interludes": {"interludes": ("noise",)},
    "pink noise 10 dB": {"noise": "pink", "snr_db": 10.0},
    "babble noise 10 dB": {"noise": "babble", "snr_db": 10.0},
    # A meeting's distant talker: reverberant, quieter, over a room's noise.
    "far-field room": {"rt60_s": 0.6, "distance_db": -15.0, "noise": "pink", "snr_db": 15.0},
}
TOLERANCE_S = 0.5
LOWER_IS_BETTER = ("non_speech_gendered",)
NEAR_CHANGE_S = 1.0  # "at turn changes": speech within this of a change of speaker gender
GOALS = {"speech_f1": 0.95, "non_speech_gendered": 0.05, "gender_accuracy": 0.95, "turns_within_0.5s": 0.90, "realtime_factor": 500.0}


def _grid(found: list[segments.Segment], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted speech mask and gender (-1 none, 0 male, 1 female) per 10 ms frame centre."""
    centres = (np.arange(n) + 0.5) * vad.FRAME_S
    speech, gender = np.zeros(n, bool), np.full(n, -1)
    for s in found:
        if s.kind == segments.SPEECH:
            inside = (centres >= s.start_s) & (centres < s.end_s)
            speech |= inside
            gender[inside] = int(s.gender == "female")
    return speech, gender


def score(recording: recordings.Recording, found: list[segments.Segment]) -> dict[str, float]:
    """The three accuracy figures of one recording (see the module docstring)."""
    truth_speech = recordings.truth_frames(recording)
    n = len(truth_speech)
    centres = (np.arange(n) + 0.5) * vad.FRAME_S
    truth_gender = np.full(n, -1)
    turns = [t for t in recording.truth if t.kind in recordings.SPEECH_KINDS]
    for t in turns:
        truth_gender[(centres >= t.start_s) & (centres < t.end_s)] = int(t.kind == "female")
    speech, gender = _grid(found, n)
    both = int((speech & truth_speech).sum())
    f1 = 2 * both / max(1, int(speech.sum() + truth_speech.sum()))
    recall = both / max(1, int(truth_speech.sum()))
    precision = both / int(speech.sum()) if speech.any() else 1.0
    talking = truth_gender >= 0
    accuracy = float(np.mean(gender[talking] == truth_gender[talking])) if talking.any() else 1.0
    heard = talking & speech
    on_detected = float(np.mean(gender[heard] == truth_gender[heard])) if heard.any() else 1.0
    changes = [(a.end_s + b.start_s) / 2 for a, b in zip(turns, turns[1:], strict=False) if a.kind != b.kind]
    near_change = talking & np.any([np.abs(centres - c) <= NEAR_CHANGE_S for c in changes], axis=0) \
        if changes else np.zeros(n, bool)
    at_changes = float(np.mean(gender[near_change] == truth_gender[near_change])) if near_change.any() else 1.0
    bounds = np.array([b for s in found if s.kind == segments.SPEECH for b in (s.start_s, s.end_s)])
    near = [bool(bounds.size) and min(np.abs(bounds - t.start_s)) <= TOLERANCE_S
            and min(np.abs(bounds - t.end_s)) <= TOLERANCE_S for t in turns]
    outside = ~talking  # pauses between turns, music, noise: what must get no gender
    gendered = float(np.mean(gender[outside] >= 0)) if outside.any() else 0.0
    return {"speech_f1": f1, "speech_recall": recall, "speech_precision": precision,
            "non_speech_gendered": gendered, "gender_accuracy": accuracy, "gender_accuracy_detected": on_detected,
            "gender_accuracy_at_changes": at_changes, "turns_within_0.5s": float(np.mean(near)) if near else 1.0}


def oracle_gender_accuracy(lite: classifier.Classifier, recording: recordings.Recording) -> float:
    """The share of speech time right when each true turn is classified whole: the model's own bound."""
    segmenter = segments.Segmenter(lite)
    right = total = 0.0
    for turn in recording.truth:
        if turn.kind in recordings.SPEECH_KINDS:
            a, b = round(turn.start_s * recording.sample_rate), round(turn.end_s * recording.sample_rate)
            p = lite.calibrated(float(np.mean(segmenter.block_p(recording.waveform[a:b], recording.waveform, a))))
            right += (turn.end_s - turn.start_s) * ((p >= lite.threshold) == (turn.kind == "female"))
            total += turn.end_s - turn.start_s
    return right / total if total else 1.0


def cold_start_s(path: str, method: str) -> float:
    """Wall time of ``python -m model.predict --segments`` on ``path`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "model.predict", "--segments", f"--vad={method}", "--decode_workers=1",
                    path], cwd=common.REPO, capture_output=True, check=True,
                   env={**os.environ, "PYTHONPATH": common.REPO})
    return time.perf_counter() - start


def evaluate(lite: classifier.Classifier, files: list, config: segments.SegmentConfig) -> tuple[dict, dict, float]:
    """Per-condition and mean scores of ``config`` over ``files``, and its real-time factor (CPU, one core)."""
    per_condition: dict[str, list[dict]] = {}
    cpu = audio_s = 0.0
    for name, rec, path in files:
        start = time.process_time()
        result = segments.segment_file(lite, path, config)
        cpu += time.process_time() - start
        audio_s += rec.seconds
        if result.error is not None:
            raise RuntimeError(f"{path}: {result.error}")
        per_condition.setdefault(name, []).append(score(rec, list(result.segments)))
    summary = {name: {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
               for name, rows in per_condition.items()}
    overall = {key: float(np.mean([s[key] for s in summary.values()])) for key in next(iter(summary.values()))}
    return summary, overall, audio_s / cpu


def _print_table(rows: list[tuple[str, dict]], first: str) -> None:
    print(f"  {first:<26}{'speech F1':>10}{'recall':>8}{'precis.':>8}{'gendered':>9}{'gender acc':>11}"
          f"{'(detected)':>11}{'at changes':>11}{'turns<=0.5s':>12}")
    for name, s in rows:
        print(f"  {name:<26}{s['speech_f1']:>10.3f}{s['speech_recall']:>8.3f}{s['speech_precision']:>8.3f}"
              f"{s['non_speech_gendered']:>9.3f}"
              f"{s['gender_accuracy']:>11.3f}{s['gender_accuracy_detected']:>11.3f}"
              f"{s['gender_accuracy_at_changes']:>11.3f}{s['turns_within_0.5s']:>12.3f}", flush=True)


def run_sweeps(lite: classifier.Classifier, files: list) -> dict:
    """``--sweep``: each SegmentConfig field's values tried with Silero, the other fields at their defaults."""
    out = {}
    for spec in FLAGS.sweep:
        field, _, values = spec.partition("=")
        kind = type(getattr(segments.SegmentConfig(method="silero"), field, None))
        if not values or kind not in (int, float):
            raise app.UsageError(f"--sweep={spec}: need a numeric SegmentConfig field=value,value,...")
        rows = []
        for value in values.split(","):
            config = segments.SegmentConfig(method="silero", **{field: kind(value)})
            _, overall, _ = evaluate(lite, files, config)
            rows.append((f"{field}={value}", overall))
        print(f"\nsilero, {field} (mean of the conditions; the default is "
              f"{getattr(segments.SegmentConfig(method='silero'), field)}):")
        _print_table(rows, "setting")
        out[field] = dict(rows)
    return out


def main(argv):
    del argv
    rng = np.random.default_rng(FLAGS.seed)
    male, female, where = recordings.load_sources(FLAGS.data_dirs, rng, speakers_per_gender=12)
    babble = [clip for speaker in male[-3:] + female[-3:] for clip in speaker[:2]]
    print(f"speech: {where}; {FLAGS.recordings} recordings of {FLAGS.seconds:g} s per condition", flush=True)
    lite = classifier.Classifier(num_threads=1)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, options in CONDITIONS.items():
            for _ in range(FLAGS.recordings):
                rec = recordings.make_recording(rng, male, female, seconds=FLAGS.seconds, babble_sources=babble,
                                                **options)
                path = os.path.join(tmp, f"{len(files)}.flac")
                soundfile.write(path, rec.waveform, rec.sample_rate)
                files.append((name, rec, path))
        oracle = {name: float(np.mean([oracle_gender_accuracy(lite, rec) for n, rec, _ in files if n == name]))
                  for name in CONDITIONS}
        print("gender accuracy with the true turns (the model's bound): "
              + ", ".join(f"{name} {value:.3f}" for name, value in oracle.items())
              + f"; mean {np.mean(list(oracle.values())):.3f}", flush=True)
        short = os.path.join(tmp, "short.flac")
        soundfile.write(short, files[0][1].waveform[: 5 * recordings.SAMPLE_RATE], recordings.SAMPLE_RATE)
        for method in FLAGS.methods:
            summary, overall, rtf = evaluate(lite, files, segments.SegmentConfig(method=method))
            overall["realtime_factor"] = rtf
            overall["cold_start_s"] = min(cold_start_s(short, method) for _ in range(3))
            results[method] = {"conditions": summary, "overall": overall}
            print(f"\n{method}: {overall['realtime_factor']:.0f}x real time on one core, cold start "
                  f"{overall['cold_start_s']:.2f} s")
            _print_table(list(summary.items()) + [("mean", overall)], "condition")
        sweeps = run_sweeps(lite, files)
    met = {method: {key: (r["overall"][key] <= goal) if key in LOWER_IS_BETTER else (r["overall"][key] >= goal)
                    for key, goal in GOALS.items()} | {
        "cold_start_s": r["overall"]["cold_start_s"] <= 0.2} for method, r in results.items()}
    common.print_json({"speech": where, "recordings_per_condition": FLAGS.recordings, "seconds": FLAGS.seconds,
                       "goals": GOALS, "oracle_gender_accuracy": oracle, "methods": results, "sweeps": sweeps,
                       "met": met}, digits=4)


if __name__ == "__main__":
    define_flags()
    app.run(main)
