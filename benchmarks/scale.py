r"""Does the preprocessing job scale? Peak memory, wall time and CPU per clip at 1x, 4x and 16x.

The same corpus is replicated under new speaker ids (each copy of a locale is
a new locale whose ``clips/`` links to the original clips), and the job runs
on each size as a user would run it: ``python -m beam_jobs.preprocess
--flagfile=configs/preprocess.flags --nobalance_clips`` (every labelled clip
decoded), local multi-processing runner on every core. For each run it prints
the peak RSS of the whole process tree (launcher and workers, summed, sampled
every 0.2 s), of the launcher and of the largest worker, the most spill disk
in use at once, the wall time and the CPU per decoded clip; then the ratios the
goals are stated in, against the soundfile decode floor measured in the same
run and a start-up run (32 clips) measured in the same run too.

Uses ../shared/data/commonvoice-6.1-sample when present, else the built-in
synthetic corpus. ``stft_seed`` blocks are 8x larger than ``log_mel``'s, so
its base corpus is a seeded ``--stft_fraction`` of the rows (the 16x run would
otherwise need ~80 GB of disk for spill files and shards).

Usage:
  python -m benchmarks.scale [--factors=1,4,16] [--feature_sets=log_mel,stft_seed] [--corpus=DIR]

The last line printed is one JSON object.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from beam_jobs.spill import SPILL_PREFIX
from beam_jobs.windows import WINDOW_PREFIX
from benchmarks import common
from pipeline import common_voice as cv
from pipeline import features

FLAGS = flags.FLAGS
STARTUP_CLIPS = 32  # the start-up run's clips (at Common Voice's 4:1 male:female, 8 could all be men)
GOALS = {"rss_16x_vs_1x": 1.25, "log_mel_peak_gb": 3.0, "cpu_per_clip_vs_floor": 2.0, "wall_16x_vs_1x": 17.0}


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_string("corpus", common.DEFAULT_DATA,
                        "A Common Voice release root (else the synthetic corpus is generated).")
    flags.DEFINE_list("factors", ["1", "4", "16"], "Corpus sizes, as multiples of the base corpus.")
    flags.DEFINE_list("feature_sets", ["log_mel", "stft_seed"], "Feature sets to run.")
    flags.DEFINE_float("stft_fraction", 0.25, "Fraction of the base corpus's rows used for stft_seed (disk).")
    flags.DEFINE_string("work_dir", None, "Scratch directory (default: a new temporary one, removed at the end).")
    flags.DEFINE_integer("synthetic_speakers", 60, "Speakers per gender and locale of the synthetic stand-in corpus.")
    flags.DEFINE_integer("dask_workers", 2, "Also run the smallest factor on a local Dask cluster of this many "
                         "worker processes (--runner=DaskRunner) and compare its records with the local run's; 0: "
                         "no Dask run.")
    flags.DEFINE_bool("single_pass", True, "Also run the largest factor as one pass (--window_clips=0: the job "
                      "before windows), for the before/after table.")
    flags.DEFINE_multi_string("job_flag", [], "An extra flag for every run of beam_jobs.preprocess (repeatable; "
                              "e.g. --job_flag=--direct_running_mode=in_memory).")


def labelled_rows(data: str, fraction: float) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per locale directory: (header, rows), a seeded ``fraction`` of the rows."""
    corpus = {}
    for locale_dir in sorted(os.listdir(data)):
        tsv = os.path.join(data, locale_dir, cv.VALIDATED_TSV)
        if not os.path.exists(tsv):
            continue
        with open(tsv, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        header, body = rows[0], [r for r in rows[1:] if r]
        body = [r for r in body if cv.stable_fraction("bench", "|".join(r)) < fraction]
        corpus[os.path.join(data, locale_dir)] = (header, body)
    return corpus


def replicate(corpus: dict, factor: int, root: str) -> str:
    """``factor`` copies of every locale, each with new speaker ids; clips/ links to the originals."""
    for locale_dir, (header, rows) in corpus.items():
        client = header.index("client_id")
        for copy in range(factor):
            target = os.path.join(root, f"{os.path.basename(locale_dir)}_x{copy:02d}")
            os.makedirs(target)
            os.symlink(os.path.abspath(os.path.join(locale_dir, cv.CLIPS_DIR)), os.path.join(target, cv.CLIPS_DIR))
            with open(os.path.join(target, cv.VALIDATED_TSV), "w", encoding="utf-8", newline="") as f:
                f.write("\t".join(header) + "\n")
                for row in rows:
                    row = list(row)
                    row[client] = f"x{copy:02d}_{row[client]}"
                    f.write("\t".join(row) + "\n")
    return root


def labelled_paths(corpus: dict) -> list[str]:
    """The audio files of the corpus's male and female rows (the clips the job decodes)."""
    paths = []
    for locale_dir, (header, rows) in corpus.items():
        path, gender = header.index("path"), header.index("gender")
        paths += [os.path.join(locale_dir, cv.CLIPS_DIR, r[path]) for r in rows
                  if len(r) > gender and r[gender].strip().lower() in cv.GENDER_LABELS]
    return paths


def decode_floor(corpus: dict) -> dict:
    """soundfile decoding of the corpus's labelled clips, one process: the floor the job is held to."""
    import soundfile

    paths = labelled_paths(corpus)
    best = None
    for _ in range(2):  # the better of two passes: the first may read cold files
        cpu = time.process_time()
        decoded = 0
        for p in paths:
            try:
                soundfile.read(p, dtype="float32")
                decoded += 1
            except Exception:  # noqa: BLE001 - a bad clip is the job's business, not the floor's
                continue
        per_clip = (time.process_time() - cpu) / max(1, decoded)
        best = per_clip if best is None else min(best, per_clip)
    return {"clips": decoded, "cpu_s_per_clip": best}


def stage_costs(corpus: dict, feature_set: str, limit: int = 400) -> dict[str, float]:
    """The job's own work per clip, stage by stage, in one process (ms): numpy's front end, as the job's.

    What decoding a clip costs before any Beam, spill or write cost: the
    part of the CPU per clip no runner can remove.
    """
    import io

    import numpy as np
    import soundfile
    import soxr

    from beam_jobs import decode
    from pipeline import frontend

    fs = features.get_feature_set(feature_set)
    decode.limit_blas_threads()  # the job's workers' own limit
    frontend.waveform_to_blocks(np.zeros(fs.sample_rate, np.float32), fs)
    paths = labelled_paths(corpus)
    totals, done = {"read_decode": 0.0, "resample": 0.0, "features": 0.0}, 0
    for p in paths[:limit]:
        try:
            t0 = time.process_time()
            with open(p, "rb") as f:
                wave, rate = soundfile.read(io.BytesIO(f.read()), dtype="float32", always_2d=True)
            t1 = time.process_time()
            wave = soxr.resample(wave.mean(axis=1), rate, fs.sample_rate, quality="HQ")
            t2 = time.process_time()
            frontend.waveform_to_blocks(wave, fs)
            t3 = time.process_time()
        except Exception:  # noqa: BLE001 - bad clips are not part of the per-clip cost
            continue
        totals["read_decode"] += t1 - t0
        totals["resample"] += t2 - t1
        totals["features"] += t3 - t2
        done += 1
    return {k: 1000 * v / max(1, done) for k, v in totals.items()}


def run_job(cv_dir: str, out: str, feature_set: str, extra: tuple[str, ...] = ()) -> dict:
    """Runs the job as a user would (its own process tree); clips, wall, CPU and peak RSS of the tree."""
    cmd = [sys.executable, "-m", "beam_jobs.preprocess", "--flagfile=configs/preprocess.flags", "--nobalance_clips",
           f"--features={feature_set}", f"--cv_dir={cv_dir}", f"--output_dir={out}", *FLAGS.job_flag, *extra]  # the run's own flags win
    cpu, wall = common.children_cpu_s(), time.perf_counter()
    with open(out + ".log", "w") as log:
        process = subprocess.Popen(cmd, cwd=common.REPO, stdout=log, stderr=subprocess.STDOUT)
        with common.TreeMemory(process.pid, disk_root=out, disk_prefix=SPILL_PREFIX,
                               nested_prefix=WINDOW_PREFIX) as memory:
            code = process.wait()
    wall, cpu = time.perf_counter() - wall, common.children_cpu_s() - cpu
    if code != 0:
        sys.exit(f"job failed ({code}); see {out}.log:\n" + open(out + ".log").read()[-3000:])
    with open(os.path.join(out, features.METADATA_FILENAME)) as f:
        metadata = json.load(f)
    funnel = metadata["clip_funnel"]
    return {"clips_to_decode": funnel["after_clip_balance"], "clips_decoded": funnel["decoded"],
            "blocks_written": sum(metadata["blocks_read_back"].values()), "wall_s": wall, "cpu_s": cpu,
            "splits": metadata["splits"], "rejected": metadata["rejected"], "shards": metadata["shards"],
            "peak_rss_gb": memory.peak_bytes / 1e9, "peak_rss_launcher_gb": memory.peak_root_bytes / 1e9,
            "peak_rss_largest_worker_gb": memory.peak_child_bytes / 1e9, "peak_spill_gb": memory.peak_disk_bytes / 1e9,
            "cpu_ms_per_clip": 1000 * cpu / max(1, funnel["after_clip_balance"]),
            "windows": metadata.get("windows", 1)}


def synthetic_corpus(root: str, speakers: int) -> str:
    from beam_jobs import sample_corpus

    sample_corpus.make_corpus(root, speakers_per_gender=speakers, clips_per_speaker=2, seconds_range=(2.0, 7.0))
    return root


def measure(feature_set: str, corpus: dict, factors: list[int], work: str) -> dict:
    startup_dir = replicate(corpus, 1, os.path.join(work, f"{feature_set}_startup_cv"))
    # Every clip in train, and enough of them that both genders are there: the job refuses data it cannot train on.
    startup = run_job(startup_dir, os.path.join(work, f"{feature_set}_startup"), feature_set,
                      (f"--limit_clips={STARTUP_CLIPS}", "--split_fractions=1,0,0"))
    runs, dask_run, cv_dirs = {}, None, {}
    for factor in factors:
        cv_dirs[factor] = replicate(corpus, factor, os.path.join(work, f"{feature_set}_{factor}x_cv"))
        out = os.path.join(work, f"{feature_set}_{factor}x")
        runs[factor] = run_job(cv_dirs[factor], out, feature_set)
        shutil.rmtree(out)  # the 16x stft_seed output is tens of GB: keep one at a time
        _print_run(f"{feature_set} {factor:>2}x", runs[factor])
    single = None
    if FLAGS.single_pass and runs[max(factors)]["windows"] > 1:
        big = max(factors)
        out = os.path.join(work, f"{feature_set}_{big}x_single")
        single = run_job(cv_dirs[big], out, feature_set, ("--window_clips=0",))
        shutil.rmtree(out)
        _print_run(f"{feature_set} {big:>2}x in one pass (--window_clips=0, the job before windows)", single)
    if FLAGS.dask_workers:
        small = min(factors)
        out = os.path.join(work, f"{feature_set}_{small}x_dask")
        dask_run = run_job(cv_dirs[small], out, feature_set,
                           ("--runner=DaskRunner", f"--dask_local_workers={FLAGS.dask_workers}"))
        shutil.rmtree(out)
        local = runs[small]
        dask_run["same_as_local"] = {key: dask_run[key] == local[key]
                                     for key in ("splits", "rejected", "shards", "blocks_written")}
        _print_run(f"{feature_set} {small:>2}x on Dask ({FLAGS.dask_workers} workers)", dask_run)
        print("    records, rejections and shards per split and gender as the local run's: "
              + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in dask_run["same_as_local"].items()), flush=True)
    return {"startup": startup, "runs": runs, "single_pass": single, "dask": dask_run}


def _print_run(name: str, run: dict) -> None:
    windows = f" in {run['windows']} windows" if run["windows"] > 1 else ""
    print(f"  {name}: {run['clips_to_decode']:>7,} clips{windows}  {run['peak_rss_gb']:.2f} GB (launcher "
          f"{run['peak_rss_launcher_gb']:.2f}, largest worker {run['peak_rss_largest_worker_gb']:.2f})  "
          f"{run['wall_s']:7.1f} s  {run['cpu_ms_per_clip']:.2f} ms CPU/clip  spill {run['peak_spill_gb']:.2f} GB",
          flush=True)


def ratios(result: dict, floor_ms: float) -> dict:
    runs, startup = result["runs"], result["startup"]
    small, big = min(runs), max(runs)
    a, b = runs[small], runs[big]
    steady_ms = 1000 * (b["cpu_s"] - a["cpu_s"]) / max(1, b["clips_to_decode"] - a["clips_to_decode"])
    return {
        "rss_big_vs_small": b["peak_rss_gb"] / a["peak_rss_gb"],
        "peak_rss_gb": max(r["peak_rss_gb"] for r in runs.values()),
        "steady_cpu_ms_per_clip": steady_ms,
        "steady_cpu_vs_floor": steady_ms / floor_ms,
        "wall_beyond_startup_big_vs_small": (b["wall_s"] - startup["wall_s"]) / max(1e-9, a["wall_s"] - startup["wall_s"]),
        "clips_big_vs_small": b["clips_to_decode"] / max(1, a["clips_to_decode"]),
    }


def main(argv: list[str]) -> None:
    del argv
    factors = sorted(int(f) for f in FLAGS.factors)
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="vg_scale_")
    os.makedirs(work, exist_ok=True)
    if common.corpus_present(FLAGS.corpus):
        data, source = FLAGS.corpus, f"real Common Voice ({os.path.normpath(FLAGS.corpus)})"
    else:
        data = synthetic_corpus(os.path.join(work, "synthetic"), FLAGS.synthetic_speakers)
        source = "the synthetic corpus (../shared/data absent)"
    print(f"Corpus: {source}; factors {factors}; {os.cpu_count()} cores; work dir {work}", flush=True)
    report = {"source": source, "cores": os.cpu_count(), "factors": factors, "goals": GOALS, "features": {}}
    # The floor and the stages are measured under the job's own malloc settings: with glibc's defaults a
    # process that never imported TensorFlow maps (and faults in) every array over 128 KiB, which made the
    # decode floor 1.3x and the FFT 4x slower than in the job (WORKSPACE.md).
    from beam_jobs import runner

    runner.tune_malloc()
    try:
        for feature_set in FLAGS.feature_sets:
            fraction = FLAGS.stft_fraction if feature_set == "stft_seed" else 1.0
            corpus = labelled_rows(data, fraction)
            floor = decode_floor(corpus)
            print(f"{feature_set}: base corpus {fraction:.0%} of the rows; decode floor "
                  f"{1000 * floor['cpu_s_per_clip']:.2f} ms CPU/clip over {floor['clips']:,} clips", flush=True)
            stages = stage_costs(corpus, feature_set)
            result = measure(feature_set, corpus, factors, work)
            result["decode_floor_ms_per_clip"] = 1000 * floor["cpu_s_per_clip"]
            result["ratios"] = ratios(result, 1000 * floor["cpu_s_per_clip"])
            own = sum(stages.values())
            stages["beam_spill_write_verify"] = result["ratios"]["steady_cpu_ms_per_clip"] - own
            result["steady_cpu_ms_per_clip_by_stage"] = stages
            report["features"][feature_set] = result
            r = result["ratios"]
            print(f"  start-up ({STARTUP_CLIPS} clips): {result['startup']['wall_s']:.1f} s wall, "
                  f"{result['startup']['peak_rss_gb']:.2f} GB")
            print(f"  peak RSS {max(factors)}x/{min(factors)}x: {r['rss_big_vs_small']:.2f} (goal <= "
                  f"{GOALS['rss_16x_vs_1x']}); peak {r['peak_rss_gb']:.2f} GB")
            if result["single_pass"]:
                print(f"  one pass at {max(factors)}x (before windows): {result['single_pass']['peak_rss_gb']:.2f} GB = "
                      f"{result['single_pass']['peak_rss_gb'] / result['runs'][min(factors)]['peak_rss_gb']:.2f}x "
                      f"the {min(factors)}x run")
            print(f"  steady CPU per clip: {r['steady_cpu_ms_per_clip']:.2f} ms = {r['steady_cpu_vs_floor']:.2f}x the "
                  f"decode floor (goal <= {GOALS['cpu_per_clip_vs_floor']})")
            print("  steady CPU per clip by stage (ms): " + ", ".join(f"{k}={v:.2f}" for k, v in stages.items())
                  + f"; own work alone = {own / (1000 * floor['cpu_s_per_clip']):.2f}x the floor")
            print(f"  wall beyond start-up {max(factors)}x/{min(factors)}x: {r['wall_beyond_startup_big_vs_small']:.2f} "
                  f"for {r['clips_big_vs_small']:.1f}x the clips (goal <= {GOALS['wall_16x_vs_1x']})", flush=True)
    finally:
        if not FLAGS.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    common.print_json(report)


if __name__ == "__main__":
    define_flags()
    app.run(main)
