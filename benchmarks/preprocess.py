r"""Preprocessing throughput, side by side in one run.

(a) decode floor: soundfile decoding of the clips, one process;
(b) the seed article's loop: per clip, decode + ``tf.signal.stft`` at the
    native rate + the article's block slicing, one process;
(c) this job (``python -m beam_jobs.preprocess``) on the DirectRunner in
    multi-processing mode on all cores, run twice (N clips and a few clips) so
    its fixed start-up cost and its marginal per-clip cost are both reported.

Uses real Common Voice MP3s from ../shared/data when present, else generates
real-length synthetic MP3s. Prints a table; the last line is one JSON object.

Usage:
  python -m benchmarks.preprocess [--clips=300] [--data=../shared/data/commonvoice-6.1-sample]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported, here and in the job's processes

import numpy as np
from absl import app, flags

from benchmarks import common

FLAGS = flags.FLAGS
STARTUP_CLIPS = 8  # the small run that measures the job's fixed start-up cost


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("clips", 300, "Clips to measure on (half male, half female).")
    flags.DEFINE_string("data", common.DEFAULT_DATA, "A Common Voice release root (else clips are generated).")
    flags.DEFINE_multi_string("job_flag", [], "An extra flag for every run of beam_jobs.preprocess (repeatable; "
                              "e.g. --job_flag=--direct_running_mode=in_memory).")


def decode_floor(paths: list[str]) -> dict:
    """soundfile decoding of every clip in this process: wall, CPU and audio seconds."""
    import soundfile

    wall, cpu = time.perf_counter(), common.process_cpu_s()
    seconds = 0.0
    for p in paths:
        data, rate = soundfile.read(p, dtype="float32")
        seconds += len(data) / rate
    return {"wall_s": time.perf_counter() - wall, "cpu_s": common.process_cpu_s() - cpu, "audio_s": seconds,
            "clips": len(paths)}


def seed_loop(paths: list[str]) -> dict:
    """The article's audioToTensor per clip (decoding through soundfile, as tensorflow-io is unusable)."""
    import soundfile

    wall, cpu = time.perf_counter(), common.process_cpu_s()
    seconds, blocks = 0.0, 0
    for p in paths:
        audio, rate = soundfile.read(p, dtype="float32")
        seconds += len(audio) / rate
        blocks += len(common.seed_blocks(audio, rate))
    return {"wall_s": time.perf_counter() - wall, "cpu_s": common.process_cpu_s() - cpu, "audio_s": seconds,
            "clips": len(paths), "blocks": blocks}


def stage_costs(paths: list[str]) -> dict:
    """Per-clip CPU of the job's own work in one process, stage by stage (no Beam)."""
    import soundfile
    import soxr

    from beam_jobs import decode
    from pipeline import features, frontend

    fs = features.LOG_MEL
    decode.limit_blas_threads()  # the job's workers' own limit
    frontend.waveform_to_blocks(np.zeros(fs.sample_rate, np.float32), fs)  # the job's front end (numpy)
    totals = {"read_decode": 0.0, "resample": 0.0, "features": 0.0}
    for p in paths:
        t = common.process_cpu_s()
        audio, rate = soundfile.read(p, dtype="float32")
        t1 = common.process_cpu_s()
        audio = soxr.resample(audio, rate, fs.sample_rate, quality="HQ")
        t2 = common.process_cpu_s()
        frontend.waveform_to_blocks(audio, fs)
        t3 = common.process_cpu_s()
        totals["read_decode"] += t1 - t
        totals["resample"] += t2 - t1
        totals["features"] += t3 - t2
    return {k: v / len(paths) for k, v in totals.items()}


def run_job(locale_dir: str, out: str, limit: int, extra: list[str]) -> dict:
    """Runs the job as a user would (its own process) on ``locale_dir``; wall, CPU and clips decoded."""
    from pipeline import features

    # Every speaker in train: the start-up run's few speakers could not fill a validation and a test split
    # with both genders, which the job refuses; the work per clip does not depend on the split.
    cmd = [sys.executable, "-m", "beam_jobs.preprocess", f"--cv_dir={locale_dir}", f"--output_dir={out}",
           "--split_fractions=1,0,0", "--max_clips_per_speaker=0", "--max_blocks_per_clip=0",
           f"--limit_clips={limit}", "--overwrite", *extra]
    before, wall = common.children_cpu_s(), time.perf_counter()
    result = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if result.returncode != 0:
        sys.exit(f"job failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(out, features.METADATA_FILENAME)) as f:
        metadata = json.load(f)
    funnel = metadata["clip_funnel"]
    # Clips the job decoded (written or rejected after decoding), not those balance skipped.
    decoded = funnel["after_clip_balance"]
    seconds = sum(sum(s["audio_seconds"].values()) for s in metadata["splits"].values())
    return {"wall_s": wall, "cpu_s": common.children_cpu_s() - before, "clips": decoded, "written": funnel["written"],
            "audio_s_written": seconds}


def summarize(floor: dict, seed: dict, small: dict, full: dict) -> tuple[dict, dict, float]:
    """Rows of the table (per-clip rates), the ratios the goals are stated in, and the marginal CPU per clip."""
    audio_per_clip = floor["audio_s"] / floor["clips"]
    rows = {
        "decode_floor": {**floor, "clips_per_s": floor["clips"] / floor["wall_s"],
                         "cpu_s_per_clip": floor["cpu_s"] / floor["clips"]},
        "seed_loop": {**seed, "clips_per_s": seed["clips"] / seed["wall_s"],
                      "cpu_s_per_clip": seed["cpu_s"] / seed["clips"]},
        "job": {**full, "clips_per_s": full["clips"] / full["wall_s"], "cpu_s_per_clip": full["cpu_s"] / full["clips"]},
    }
    marginal_cpu = (full["cpu_s"] - small["cpu_s"]) / max(1, full["clips"] - small["clips"])
    marginal_wall = (full["wall_s"] - small["wall_s"]) / max(1, full["clips"] - small["clips"])
    rows["job_marginal"] = {"clips_per_s": 1 / marginal_wall, "cpu_s_per_clip": marginal_cpu,
                            "startup_wall_s": small["wall_s"], "startup_cpu_s": small["cpu_s"]}
    for r in rows.values():
        r["audio_s_per_s"] = r["clips_per_s"] * audio_per_clip
    ratios = {
        "job_cpu_per_clip_vs_decode_floor": rows["job"]["cpu_s_per_clip"] / rows["decode_floor"]["cpu_s_per_clip"],
        "job_marginal_cpu_per_clip_vs_decode_floor": marginal_cpu / rows["decode_floor"]["cpu_s_per_clip"],
        "job_wall_throughput_vs_seed_loop": rows["job"]["clips_per_s"] / rows["seed_loop"]["clips_per_s"],
        "job_marginal_throughput_vs_seed_loop": rows["job_marginal"]["clips_per_s"] / rows["seed_loop"]["clips_per_s"],
    }
    return rows, ratios, marginal_cpu


def main(argv: list[str]) -> None:
    del argv
    tmp = tempfile.mkdtemp(prefix="vg_bench_")
    clips, source = common.load_clips(FLAGS.data, FLAGS.clips, tmp)
    locale_dir = common.write_corpus(tmp, clips)
    paths = [c.audio_path for c in clips]
    print(f"Corpus: {len(paths)} clips, {source}; {os.cpu_count()} cores")
    from beam_jobs import runner

    runner.tune_malloc()  # the floor and the stages under the job's malloc settings (see benchmarks.scale)
    floor = decode_floor(paths)
    seed = seed_loop(paths)
    stages = stage_costs(paths)
    small = run_job(locale_dir, os.path.join(tmp, "out_small"), STARTUP_CLIPS, FLAGS.job_flag)
    full = run_job(locale_dir, os.path.join(tmp, "out_full"), 0, FLAGS.job_flag)
    rows, ratios, marginal_cpu = summarize(floor, seed, small, full)

    print(f"{'':<14}{'clips/s':>9}{'audio-s/s':>11}{'CPU-s/clip':>12}")
    for name, r in rows.items():
        print(f"{name:<14}{r['clips_per_s']:>9.1f}{r['audio_s_per_s']:>11.1f}{r['cpu_s_per_clip']:>12.4f}")
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}")
    own = sum(stages.values())
    stages["beam_and_serialization"] = marginal_cpu - own
    print("Job CPU per clip, by stage (ms): " + ", ".join(f"{k}={1000 * v:.2f}" for k, v in stages.items()))
    common.print_json({"clips": len(paths), "source": source, "cores": os.cpu_count(),
                       "mean_clip_s": floor["audio_s"] / floor["clips"], **rows, "ratios": ratios,
                       "job_cpu_per_clip_by_stage": stages})


if __name__ == "__main__":
    define_flags()
    app.run(main)
