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
  python benchmarks/preprocess.py [--clips=300] [--data=../shared/data/commonvoice-6.1-sample]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "commonvoice-6.1-sample")
HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale", "segment"]


def pick_real_clips(data_dir: str, n: int) -> list[tuple[str, str, str]]:
    """Up to n/2 male and n/2 female (path, client_id, gender) from every locale, one clip per speaker first."""
    by_gender: dict[str, list] = {"male": [], "female": []}
    seen = set()
    for locale in sorted(os.listdir(data_dir)):
        tsv = os.path.join(data_dir, locale, "validated.tsv")
        if not os.path.exists(tsv):
            continue
        with open(tsv, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                g = row.get("gender")
                path = os.path.join(data_dir, locale, "clips", row["path"])
                if g in by_gender and row["client_id"] not in seen and os.path.exists(path):
                    seen.add(row["client_id"])
                    by_gender[g].append((path, row["client_id"], g))
    half = n // 2
    return by_gender["male"][:half] + by_gender["female"][:half]


def synthetic_clips(root: str, n: int) -> list[tuple[str, str, str]]:
    from beam_jobs import sample_corpus

    per_gender = max(1, n // 4)  # 2 locales x 2 genders
    sample_corpus.make_corpus(root, speakers_per_gender=per_gender, clips_per_speaker=1, seconds_range=(3.0, 6.0))
    clips = []
    for locale in ("en", "de"):
        with open(os.path.join(root, locale, "validated.tsv"), encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                g = {"male": "male", "male_masculine": "male", "female": "female", "female_feminine": "female"}.get(
                    row.get("gender", ""))
                path = os.path.join(root, locale, "clips", row["path"])
                if g and os.path.getsize(path) > 10000:
                    clips.append((path, row["client_id"], g))
    return clips[:n]


def load_clips(data_dir: str, n: int, tmp: str) -> tuple[list[tuple[str, str, str]], str]:
    """Real clips from ``data_dir`` if it exists, else generated ones; and a description of which."""
    if os.path.isdir(data_dir):
        return pick_real_clips(data_dir, n), f"real Common Voice ({data_dir})"
    return synthetic_clips(os.path.join(tmp, "synthetic"), n), "generated clips (../shared/data absent)"


def write_corpus(root: str, clips: list[tuple[str, str, str]]) -> str:
    """A one-locale Common Voice directory listing exactly these clips (symlinked)."""
    locale = os.path.join(root, "bench")
    os.makedirs(os.path.join(locale, "clips"), exist_ok=True)
    with open(os.path.join(locale, "validated.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(HEADER) + "\n")
        for i, (path, client, gender) in enumerate(clips):
            name = f"{i:05d}_{os.path.basename(path)}"
            os.symlink(os.path.abspath(path), os.path.join(locale, "clips", name))
            f.write("\t".join([client, name, "x", "2", "0", "", gender, "", "bench", ""]) + "\n")
    return locale


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def decode_floor(paths: list[str]) -> dict:
    import soundfile

    wall, cpu = time.perf_counter(), cpu_now()
    seconds = 0.0
    for p in paths:
        data, rate = soundfile.read(p, dtype="float32")
        seconds += len(data) / rate
    return {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_now() - cpu, "audio_s": seconds, "clips": len(paths)}


def seed_loop(paths: list[str]) -> dict:
    """The article's audioToTensor per clip (decoding through soundfile, as tensorflow-io is unusable)."""
    import soundfile
    import tensorflow as tf

    frame_length, step_time, image_width = 1024, 0.008, 100
    wall, cpu = time.perf_counter(), cpu_now()
    seconds, blocks = 0.0, 0
    for p in paths:
        audio, rate = soundfile.read(p, dtype="float32")
        seconds += len(audio) / rate
        audio = tf.convert_to_tensor(audio)
        spectrogram = tf.signal.stft(audio, frame_length=frame_length, frame_step=int(rate * step_time))
        spect_real = tf.abs(tf.math.real(spectrogram))
        parts = np.zeros((len(spect_real) // image_width, image_width, frame_length // 2 + 1))
        for i, start in enumerate(range(0, len(spectrogram) - image_width, image_width)):
            parts[i] = spect_real[start : start + image_width]
        blocks += len(parts)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_now() - cpu, "audio_s": seconds, "clips": len(paths),
            "blocks": blocks}


def stage_costs(paths: list[str]) -> dict:
    """Per-clip CPU of the job's own work in one process, stage by stage (no Beam)."""
    import soundfile
    import soxr

    from pipeline import features, spectrogram

    fs = features.LOG_MEL
    block_fn = spectrogram.make_block_fn(fs)
    block_fn(np.zeros(fs.sample_rate, np.float32))  # trace once, outside the timing
    totals = {"read_decode": 0.0, "resample": 0.0, "features": 0.0}
    for p in paths:
        t = cpu_now()
        audio, rate = soundfile.read(p, dtype="float32")
        t1 = cpu_now()
        audio = soxr.resample(audio, rate, fs.sample_rate, quality="HQ")
        t2 = cpu_now()
        blocks, voiced = block_fn(audio)
        blocks.numpy()
        t3 = cpu_now()
        totals["read_decode"] += t1 - t
        totals["resample"] += t2 - t1
        totals["features"] += t3 - t2
    return {k: v / len(paths) for k, v in totals.items()}


def run_job(locale_dir: str, out: str, limit: int) -> dict:
    cmd = [sys.executable, "-m", "beam_jobs.preprocess", f"--cv_dir={locale_dir}", f"--output_dir={out}",
           "--max_clips_per_speaker=0", "--max_blocks_per_clip=0", f"--limit_clips={limit}", "--overwrite"]
    before, wall = children_cpu(), time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if result.returncode != 0:
        sys.exit(f"job failed:\n{result.stderr[-3000:]}")
    metadata = json.load(open(os.path.join(out, "metadata.json")))
    funnel = metadata["clip_funnel"]
    # Clips the job decoded (written or rejected after decoding), not those balance skipped.
    decoded = funnel["after_clip_balance"]
    seconds = sum(sum(s["audio_seconds"].values()) for s in metadata["splits"].values())
    return {"wall_s": wall, "cpu_s": children_cpu() - before, "clips": decoded, "written": funnel["written"],
            "audio_s_written": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--data", default=DEFAULT_DATA)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="vg_bench_")
    if os.path.isdir(args.data):
        source = f"real Common Voice MP3s from {os.path.normpath(args.data)}"
        clips = pick_real_clips(args.data, args.clips)
    else:
        source = "synthetic MP3s (../shared/data not found)"
        clips = synthetic_clips(os.path.join(tmp, "synthetic"), args.clips)
    locale_dir = write_corpus(tmp, clips)
    paths = [c[0] for c in clips]
    print(f"Corpus: {len(paths)} clips, {source}; {os.cpu_count()} cores")

    floor = decode_floor(paths)
    seed = seed_loop(paths)
    stages = stage_costs(paths)
    small = run_job(locale_dir, os.path.join(tmp, "out_small"), limit=8)
    full = run_job(locale_dir, os.path.join(tmp, "out_full"), limit=0)

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

    print(f"{'':<14}{'clips/s':>9}{'audio-s/s':>11}{'CPU-s/clip':>12}")
    for name, r in rows.items():
        print(f"{name:<14}{r['clips_per_s']:>9.1f}{r['audio_s_per_s']:>11.1f}{r['cpu_s_per_clip']:>12.4f}")
    ratios = {
        "job_cpu_per_clip_vs_decode_floor": rows["job"]["cpu_s_per_clip"] / rows["decode_floor"]["cpu_s_per_clip"],
        "job_marginal_cpu_per_clip_vs_decode_floor": marginal_cpu / rows["decode_floor"]["cpu_s_per_clip"],
        "job_wall_throughput_vs_seed_loop": rows["job"]["clips_per_s"] / rows["seed_loop"]["clips_per_s"],
        "job_marginal_throughput_vs_seed_loop": rows["job_marginal"]["clips_per_s"] / rows["seed_loop"]["clips_per_s"],
    }
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}")
    own = sum(stages.values())
    stages["beam_and_serialization"] = marginal_cpu - own
    print("Job CPU per clip, by stage (ms): " + ", ".join(f"{k}={1000 * v:.2f}" for k, v in stages.items()))
    print(json.dumps({"clips": len(paths), "source": source, "cores": os.cpu_count(),
                      "mean_clip_s": audio_per_clip, **{k: v for k, v in rows.items()}, "ratios": ratios,
                      "job_cpu_per_clip_by_stage": stages},
                     default=float))


if __name__ == "__main__":
    main()
