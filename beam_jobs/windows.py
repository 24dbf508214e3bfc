"""Windows: a large release run locally as passes over disjoint sets of speakers, merged into one output.

The local FnApiRunner materialises every stage's input in the launcher, and
hands each worker its share of a grouped input as one bytes object that is
copied about five times on its way over gRPC (memray, WORKSPACE.md): the
launcher grew ~6.5 KB and each worker ~3.4 KB per clip at 50k clips, however
small the records. No setting of the runner bounds that, so a local run over
more clips than ``window_clips`` runs the same graph once per *window*: the
clips of a seeded hash slice of the speakers (``ReadClips(window=...)``), each
window into its own directory with its own spill files, then ``merge``
renumbers the shards into one ``split-SSSSS-of-NNNNN`` series, concatenates
the rejections and adds up the metadata. Memory is then bounded by the window,
not the release.

What every step needs is inside a window: the speaker cap and the speaker split
are per speaker, the statistics and counts add up (the normalisation from each
window's frames, mean and std). The balances balance each window, so the whole
is balanced too (up to the same binomial noise); they are the one thing that is
not the single pass's choice. Rows that cannot be parsed have no speaker: window
0 reports them; a TSV lost in any pass is reported once (``read.reported_in_window``).
A clip id listed under two speakers whose windows differ is not seen as a
duplicate (a single pass keeps one, or none when the genders conflict):
Common Voice lists each path once.

Limits: windows are cut by speaker before the per-speaker cap, so a speaker with
very many rows makes its window that much larger; with ``use_official_splits``
each window reads the whole official listing (clip id and split only). Windows
run only where the output is a local directory (the merge renames and
concatenates files in place).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems

from beam_jobs.read import SOURCE_REASONS
from beam_jobs.write import INCOMPLETE_METADATA_FILENAME, MeanStdFn, write_metadata
from pipeline import common_voice as cv
from pipeline import features

WINDOW_PREFIX = "_window-"


def window_count(rows: int, window_clips: int) -> int:
    """How many windows ``rows`` labelled rows need at ``window_clips`` clips each (1: one pass)."""
    if window_clips <= 0 or rows <= window_clips:
        return 1
    return math.ceil(rows / window_clips)


def window_dir(output_dir: str, index: int, count: int) -> str:
    return cv.join(output_dir, f"{WINDOW_PREFIX}{index:04d}-of-{count:04d}")


def can_window(output_dir: str) -> bool:
    """Whether the merge can work in ``output_dir``: a local directory (it renames and concatenates in place)."""
    return "://" not in output_dir


def remove_windows(output_dir: str) -> None:
    """Deletes every window directory in ``output_dir``: what a run that was killed left, or a finished run's."""
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            if name.startswith(WINDOW_PREFIX):
                shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def read_window_metadata(directory: str) -> dict[str, Any]:
    """A finished window's metadata, complete or not (a window may lack a gender the whole has)."""
    for name in (features.METADATA_FILENAME, INCOMPLETE_METADATA_FILENAME):
        path = cv.join(directory, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f)
    raise FileNotFoundError(f"{directory}: the window wrote no metadata")


def _add(a: Any, b: Any) -> Any:
    """Nested dicts of numbers, added key by key."""
    if isinstance(a, dict) or isinstance(b, dict):
        a, b = a or {}, b or {}
        return {k: _add(a.get(k, 0), b.get(k, 0)) for k in sorted(set(a) | set(b))}
    return a + b


def merge_normalization(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One window statistics dict from several (``MeanStdFn`` outputs), exactly as one pass would compute it.

    Each window's sums come back from its frames, mean and std
    (sum = mean * n, sum of squares = (std^2 + mean^2) * n).
    """
    if any(p.get("non_finite") for p in parts):
        return {"frames": sum(int(p.get("frames", 0)) for p in parts), "non_finite": True}
    total = (0, 0.0, 0.0)
    for p in parts:
        n = int(p.get("frames", 0))
        if not n:
            continue
        mean, std = np.asarray(p["mean"], np.float64), np.asarray(p["std"], np.float64)
        total = (total[0] + n, total[1] + mean * n, total[2] + (np.square(std) + np.square(mean)) * n)
    return MeanStdFn().extract_output(total)


def merge_metadata(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The computed metadata of the whole from the windows' (all but shards and rejections, which ``merge`` adds)."""
    merged: dict[str, Any] = {}
    for key in ("splits", "clip_funnel", "blocks_read_back"):  # shards and rejections: ``merge`` (files moved)
        value: Any = {}
        for p in parts:
            value = _add(value, p.get(key, {}))
        merged[key] = value
    merged["splits"] = _round_seconds(merged["splits"])
    merged["blocks_decoded"] = sum(int(p.get("blocks_decoded", 0)) for p in parts)
    merged["normalization"] = merge_normalization([p.get("normalization", {"frames": 0}) for p in parts])
    lost = {(x["item"], x["reason"]): x for p in reversed(parts) for x in p.get("lost_sources") or []}
    merged["lost_sources"] = sorted(lost.values(), key=lambda x: (x["item"], x["reason"]))  # once, as window 0 saw it
    merged["speakers_with_both_genders"] = sorted({s for p in parts for s in p.get("speakers_with_both_genders") or []})
    merged["windows"] = len(parts)
    return merged


def _round_seconds(splits: dict[str, Any]) -> dict[str, Any]:
    for counts in splits.values():
        counts["audio_seconds"] = {g: round(s, 2) for g, s in counts["audio_seconds"].items()}
    return splits


def move_shards(window_dirs: Sequence[str], shard_counts: Sequence[dict[str, int]], output_dir: str) -> dict[str, int]:
    """Renames every window's shards into one numbering per split; returns the shards per split."""
    totals: dict[str, int] = {}
    for split in features.SPLITS:
        total = sum(counts.get(split, 0) for counts in shard_counts)
        index = 0
        for directory, counts in zip(window_dirs, shard_counts, strict=True):
            for k in range(counts.get(split, 0)):
                source = cv.join(directory, features.shard_name(split, k, counts[split]))
                FileSystems.rename([source], [cv.join(output_dir, features.shard_name(split, index, total))])
                index += 1
        if total:  # as a single pass: a split without blocks has no entry
            totals[split] = total
    return totals


def concatenate_rejections(window_dirs: Sequence[str], output_dir: str) -> dict[str, int]:
    """One ``rejected-00000-of-00001.tsv`` from the windows' (their header once); the rejections per reason.

    A TSV lost in several passes (``read.reported_in_window``) is listed once.
    The counts are those of the lines written, so the file and the metadata agree.
    """
    path = cv.join(output_dir, f"{features.REJECTED_PREFIX}-00000-of-00001.tsv")
    counts: dict[str, int] = {}
    lost_once: set[tuple[str, str]] = set()
    with open(path, "w", encoding="utf-8") as out:
        out.write("clip\treason\tdetail\n")
        for directory in window_dirs:
            for name in sorted(os.listdir(directory)):
                if not (name.startswith(features.REJECTED_PREFIX + "-") and name.endswith(".tsv")):
                    continue
                with open(os.path.join(directory, name), encoding="utf-8") as f:
                    next(f, None)  # the header
                    for line in f:
                        item, reason = (line.split("\t") + ["", ""])[:2]
                        if reason in SOURCE_REASONS:
                            if (item, reason) in lost_once:
                                continue
                            lost_once.add((item, reason))
                        counts[reason] = counts.get(reason, 0) + 1
                        out.write(line)
    return counts


def merge(window_dirs: Sequence[str], output_dir: str, static: dict[str, Any]) -> str:
    """Moves the windows' shards and rejections into ``output_dir`` and writes the merged metadata.

    Returns:
      The metadata path written: ``metadata.json``, or ``metadata.incomplete.json``
      (with its ``problems``) when the whole cannot train a model.
    """
    parts = [read_window_metadata(d) for d in window_dirs]
    computed = merge_metadata(parts)
    computed["shards"] = move_shards(window_dirs, [p.get("shards", {}) for p in parts], output_dir)
    computed["rejected"] = concatenate_rejections(window_dirs, output_dir)
    # As a single pass commits it: read-back counts against the plan, completeness, metadata.json or not.
    path = write_metadata(output_dir, static, computed)
    for directory in window_dirs:
        shutil.rmtree(directory, ignore_errors=True)
    return path
