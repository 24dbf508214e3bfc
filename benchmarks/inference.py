r"""Inference speed of ``model.predict``: real-time factor, cold start, model size.

(a) real-time factor on ONE core: seconds of audio classified per wall second,
    decoding included, start-up excluded (this process pinned to one CPU,
    one interpreter thread), with the LiteRT model that ``predict`` uses, for
    its default verdict over detected speech (``--vad=silero``) and the
    whole-file verdict (``--vad=none``) side by side;
(b) cold start: wall time from launching ``python -m model.predict`` on one
    5 s clip to its first result line (median of several launches), with and
    without speech detection, next to the same with TensorFlow + the
    SavedModel, the alternative it avoids;
(c) model size on disk (LiteRT file, SavedModel directory).

Goals (issue 4): >= 300x real time on one core; cold start <= 2 s.
Uses real Common Voice MP3s from ../shared/data when present, else generated
clips; the shipped pretrained model unless --model_dir. The last line is JSON.

Usage:
  python -m benchmarks.inference [--clips=300] [--model_dir=runs/cnn/export]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile
from absl import app, flags

from benchmarks import common
from model.predict import classifier, export_format, segments

SPEECH_DETECTOR = "silero"  # predict's default --vad

FLAGS = flags.FLAGS
SAVED_MODEL_ONE_CLIP = """
import sys, time, soundfile, soxr, numpy as np
import tensorflow as tf
wave, rate = soundfile.read(sys.argv[2], dtype="float32", always_2d=True)
wave = soxr.resample(wave.mean(axis=1), rate, 16000).astype(np.float32)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(waveform=tf.constant(wave[None]), length=tf.constant([len(wave)], tf.int32))
print(out["gender"][0].numpy().decode(), flush=True)
"""


def real_time_factor(model_dir: str | None, paths: list[str], vad: str) -> dict:
    """Audio seconds per wall second on one core, decode + classify (+ speech detection), after warm-up."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    lite = classifier.Classifier(model_dir, num_threads=1)
    classify = segments.file_classifier(lite, vad)
    classify(paths[0])  # warm-up: first invoke allocates tensors
    audio_s, failed = 0.0, 0
    start = time.perf_counter()
    for path in paths:
        result = classify(path)
        if result.error is None:
            audio_s += result.duration_s
        else:
            failed += 1
    wall = time.perf_counter() - start
    return {"clips": len(paths), "failed": failed, "audio_s": round(audio_s, 1), "wall_s": round(wall, 3),
            "rtf_one_core": audio_s / wall}


def time_to_first_line(cmd: list[str]) -> float:
    """Seconds from launching ``cmd`` to its first line on stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=common.REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait()
    if not line:
        raise RuntimeError(f"no output from {cmd}")
    return elapsed


def five_second_clip(paths: list[str], tmp: str) -> str:
    """A real clip cut or looped to exactly 5 s (WAV keeps the cut exact)."""
    wave, rate = soundfile.read(paths[0], dtype="float32")
    wave = np.resize(wave, 5 * rate)
    path = os.path.join(tmp, "five_seconds.wav")
    soundfile.write(path, wave, rate)
    return path


def dir_bytes(path: str) -> int:
    """Bytes of every file under ``path``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("clips", 300, "Clips to classify for the real-time factor.")
    flags.DEFINE_string("data", common.DEFAULT_DATA, "A Common Voice release root (else clips are generated).")
    flags.DEFINE_string("model_dir", None, "An export/ dir; default: the shipped pretrained model.")
    flags.DEFINE_integer("launches", 5, "Cold starts of predict to time (the median is reported); half as many "
                         "(at least one) of TensorFlow + SavedModel.")


def measure(model_dir: str) -> dict:
    """Cold starts (predict, then TensorFlow + SavedModel when the export has one), then the real-time factor."""
    with tempfile.TemporaryDirectory() as tmp:
        clips, source = common.load_clips(FLAGS.data, FLAGS.clips, tmp)
        paths = [c.audio_path for c in clips]
        print(f"{len(paths)} clips from {source}; model {model_dir}", flush=True)
        clip5 = five_second_clip(paths, tmp)

        predict_cmd = [sys.executable, "-m", "model.predict", f"--model_dir={model_dir}", clip5]
        whole_file_cmd = [*predict_cmd, f"--vad={segments.WHOLE_FILE}"]
        time_to_first_line(predict_cmd)  # page cache warm, as on any second run
        cold, cold_whole = [], []
        for _ in range(FLAGS.launches):  # alternated: the machine's speed drifts
            cold.append(time_to_first_line(predict_cmd))
            cold_whole.append(time_to_first_line(whole_file_cmd))
        saved_model_dir = model_dir if os.path.exists(os.path.join(model_dir, "saved_model.pb")) else None
        tf_cold = []
        if saved_model_dir:
            tf_cmd = [sys.executable, "-c", SAVED_MODEL_ONE_CLIP, saved_model_dir, clip5]
            tf_cold = [time_to_first_line(tf_cmd) for _ in range(max(1, FLAGS.launches // 2))]
        # Last: this pins the benchmark process itself to one core.
        whole = real_time_factor(model_dir, paths, segments.WHOLE_FILE)
        rtf = real_time_factor(model_dir, paths, SPEECH_DETECTOR)
    litert_bytes = os.path.getsize(os.path.join(model_dir, export_format.LITERT_FILENAME))
    return {
        **rtf,
        "rtf_one_core_whole_file": whole["rtf_one_core"],
        "failed_whole_file": whole["failed"],
        "cold_start_predict_s": statistics.median(cold),
        "cold_start_predict_whole_file_s": statistics.median(cold_whole),
        "cold_start_tf_saved_model_s": statistics.median(tf_cold) if tf_cold else None,
        "litert_bytes": litert_bytes,
        "saved_model_bytes": dir_bytes(saved_model_dir) - litert_bytes if saved_model_dir else None,
    }


def main(argv: list[str]) -> None:
    del argv
    model_dir = FLAGS.model_dir or export_format.PRETRAINED_DIR
    figures = measure(model_dir)
    figures["goal_300x_met"] = figures["rtf_one_core"] >= 300
    figures["goal_cold_start_2s_met"] = figures["cold_start_predict_s"] <= 2.0
    print(f"real-time factor, one core (decode + speech detection + classify): {figures['rtf_one_core']:.0f}x "
          f"({figures['audio_s']:.0f} s of audio in {figures['wall_s']:.2f} s; goal >= 300x); "
          f"whole file, --vad={segments.WHOLE_FILE}: {figures['rtf_one_core_whole_file']:.0f}x")
    print(f"cold start, predict (LiteRT) on a 5 s clip: {figures['cold_start_predict_s']:.2f} s (goal <= 2 s); "
          f"--vad={segments.WHOLE_FILE}: {figures['cold_start_predict_whole_file_s']:.2f} s"
          + (f"; TensorFlow + SavedModel: {figures['cold_start_tf_saved_model_s']:.2f} s"
             if figures["cold_start_tf_saved_model_s"] is not None else ""))
    print(f"model size: LiteRT {figures['litert_bytes'] / 1e6:.2f} MB"
          + (f", SavedModel {figures['saved_model_bytes'] / 1e6:.2f} MB" if figures["saved_model_bytes"] else ""))
    common.print_json(figures, digits=3)


if __name__ == "__main__":
    define_flags()
    app.run(main)
