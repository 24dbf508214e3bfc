"""The job's end-of-run summary: funnel, rejections, per-split counts, shards, lost sources; printed and
written to ``OUTPUT/summary.txt`` (``WriteSummary``) from the metadata the run committed."""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import common_voice as cv
from pipeline import features

SUMMARY_FILENAME = "summary.txt"


def summarize(metadata: dict[str, Any], output_dir: str) -> str:
    """A readable end-of-job summary of the metadata."""
    funnel = metadata.get("clip_funnel", {})
    lines = [
        f"Wrote {output_dir}",
        "Clips: "
        + ", ".join(f"{k}={funnel[k]}" for k in (
            "labelled", "after_limit", "after_speaker_cap", "after_split",
            "after_clip_balance", "decoded", "written") if k in funnel)
        + (f"; augmented train copies={funnel['augmented_copies']}" if funnel.get("augmented_copies") else ""),
    ]
    rejected = metadata.get("rejected", {})
    lines.append(f"Rejected: {sum(rejected.values())} rows/clips" + (":" if rejected else ""))
    for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {reason:<28} {n}")
    lines.append(f"{'split':<11}{'gender':<8}{'clips':>8}{'blocks':>9}{'speakers':>10}{'audio_s':>10}")
    for split, counts in metadata.get("splits", {}).items():
        for gender in features.GENDER_NAMES:
            lines.append(
                f"{split:<11}{gender:<8}{counts['clips'][gender]:>8}{counts['blocks'][gender]:>9}"
                f"{counts['speakers'][gender]:>10}{counts['audio_seconds'][gender]:>10.1f}"
            )
    shards = metadata.get("shards", {})
    lines.append("Shards: " + ", ".join(f"{s}={n}" for s, n in sorted(shards.items())))
    read_back = metadata.get("blocks_read_back")
    if read_back is not None:
        lines.append(f"Verified: {sum(read_back.values())} blocks read back from {sum(shards.values())} shards, "
                     "every shard as planned")
    mixed = metadata.get("speakers_with_both_genders") or []
    if mixed:
        shown = ", ".join(mixed[:10]) + (f" and {len(mixed) - 10} more" if len(mixed) > 10 else "")
        lines.append(f"Speakers whose clips carry both genders (kept; listed in metadata.json): {len(mixed)}: {shown}")
    lines.append(f"Rejected clips listed in {cv.join(output_dir, features.REJECTED_PREFIX)}-*.tsv")
    for lost in metadata.get("lost_sources") or []:
        lines.append(f"Not read: {lost['detail'] or lost['item']} ({lost['reason']})")
    return "\n".join(lines)


class WriteSummary(beam.PTransform):
    """The path ``WriteMetadata`` wrote -> ``OUTPUT/summary.txt`` (only when it is ``metadata.json``: complete data)."""

    def __init__(self, output_dir: str):
        super().__init__()
        self._output_dir = output_dir

    def expand(self, written_paths):
        output_dir = self._output_dir
        return written_paths | "Write" >> beam.Map(write_summary, output_dir)


def write_summary(metadata_path: str, output_dir: str) -> str | None:
    """Writes the summary of a committed ``metadata.json``; returns its path (None for incomplete data)."""
    if not metadata_path.endswith("/" + features.METADATA_FILENAME) and metadata_path != features.METADATA_FILENAME:
        return None
    with FileSystems.open(metadata_path) as f:
        metadata = json.loads(f.read())
    path = cv.join(output_dir, SUMMARY_FILENAME)
    with FileSystems.create(path) as f:
        f.write((summarize(metadata, output_dir) + "\n").encode("utf-8"))
    return path
