r"""Inference speed of ``model.predict``: real-time factor, cold start, model size.

(a) real-time factor on ONE core: seconds of audio classified per wall second,
    decoding included, start-up excluded (this process pinned to one CPU,
    one interpreter thread), with the LiteRT model that ``predict`` uses;
(b) cold start: wall time from launching ``python -m model.predict`` on one
    5 s clip to its first result line (median of several launches), next to
    the same with TensorFlow + the SavedModel, the alternative it avoids;
(c) model size on disk (LiteRT file, SavedModel directory).

Goals (issue 4): >= 300x real time on one core; cold start <= 2 s.
Uses real Common Voice MP3s from ../shared/data when present, else generated
clips; the shipped pretrained model unless --model_dir. The last line is JSON.

Usage:
  python benchmarks/inference.py [--clips=300] [--model_dir=runs/cnn/export]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

_spec = importlib.util.spec_from_file_location("bench_preprocess", os.path.join(REPO, "benchmarks", "preprocess.py"))
bench_preprocess = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_preprocess)

from model import classifier  # noqa: E402

SAVED_MODEL_ONE_CLIP = """
import sys, time, soundfile, soxr, numpy as np
import tensorflow as tf
wave, rate = soundfile.read(sys.argv[2], dtype="float32", always_2d=True)
wave = soxr.resample(wave.mean(axis=1), rate, 16000).astype(np.float32)
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(waveform=tf.constant(wave[None]), length=tf.constant([len(wave)], tf.int32))
print(out["gender"][0].numpy().decode(), flush=True)
"""


def real_time_factor(model_dir: str | None, paths: list[str]) -> dict:
    """Audio seconds per wall second on one core, decode + classify, after warm-up."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    lite = classifier.Classifier(model_dir, num_threads=1)
    lite.classify_file(paths[0])  # warm-up: first invoke allocates tensors
    audio_s, failed = 0.0, 0
    start = time.perf_counter()
    for path in paths:
        result = lite.classify_file(path)
        if result.error is None:
            audio_s += result.duration_s
        else:
            failed += 1
    wall = time.perf_counter() - start
    return {"clips": len(paths), "failed": failed, "audio_s": round(audio_s, 1), "wall_s": round(wall, 3),
            "rtf_one_core": audio_s / wall}


def time_to_first_line(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
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
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--data", default=bench_preprocess.DEFAULT_DATA)
    parser.add_argument("--model_dir", default=None, help="an export/ dir; default: the shipped pretrained model")
    parser.add_argument("--launches", type=int, default=5)
    args = parser.parse_args()
    model_dir = args.model_dir or classifier.PRETRAINED_DIR

    with tempfile.TemporaryDirectory() as tmp:
        clips, source = bench_preprocess.load_clips(args.data, args.clips, tmp)
        paths = [c[0] for c in clips]
        print(f"{len(paths)} clips from {source}; model {model_dir}", flush=True)
        clip5 = five_second_clip(paths, tmp)

        predict_cmd = [sys.executable, "-m", "model.predict", f"--model_dir={model_dir}", clip5]
        time_to_first_line(predict_cmd)  # page cache warm, as on any second run
        cold = [time_to_first_line(predict_cmd) for _ in range(args.launches)]
        saved_model_dir = model_dir if os.path.exists(os.path.join(model_dir, "saved_model.pb")) else None
        tf_cold = []
        if saved_model_dir:
            tf_cmd = [sys.executable, "-c", SAVED_MODEL_ONE_CLIP, saved_model_dir, clip5]
            tf_cold = [time_to_first_line(tf_cmd) for _ in range(max(2, args.launches // 2))]
        # Last: this pins the benchmark process itself to one core.
        rtf = real_time_factor(model_dir, paths)

    figures = {
        **rtf,
        "cold_start_predict_s": statistics.median(cold),
        "cold_start_tf_saved_model_s": statistics.median(tf_cold) if tf_cold else None,
        "litert_bytes": os.path.getsize(os.path.join(model_dir, classifier.LITERT_FILENAME)),
        "saved_model_bytes": dir_bytes(saved_model_dir) - os.path.getsize(
            os.path.join(model_dir, classifier.LITERT_FILENAME)) if saved_model_dir else None,
    }
    figures["goal_300x_met"] = figures["rtf_one_core"] >= 300
    figures["goal_cold_start_2s_met"] = figures["cold_start_predict_s"] <= 2.0
    print(f"real-time factor, one core (decode + classify): {figures['rtf_one_core']:.0f}x "
          f"({rtf['audio_s']:.0f} s of audio in {rtf['wall_s']:.2f} s; goal >= 300x)")
    print(f"cold start, predict (LiteRT) on a 5 s clip: {figures['cold_start_predict_s']:.2f} s (goal <= 2 s)"
          + (f"; TensorFlow + SavedModel: {figures['cold_start_tf_saved_model_s']:.2f} s" if tf_cold else ""))
    print(f"model size: LiteRT {figures['litert_bytes'] / 1e6:.2f} MB"
          + (f", SavedModel {figures['saved_model_bytes'] / 1e6:.2f} MB" if saved_model_dir else ""))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
