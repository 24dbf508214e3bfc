"""The preprocessing job: its typed config, pre-flight checks and composition.

``build()`` composes the named PTransforms in the order the data flows:

  ReadClips -> LimitClips -> CapClipsPerSpeaker -> SplitBySpeaker ->
  BalanceClips -> DecodeAudio -> BalanceBlocks -> PlanShards -> WriteShards
  -> VerifyShards, with WriteRejected and WriteMetadata beside them.

Only small records cross a shuffle: DecodeAudio spills each clip's blocks to
a file of its own bundle and emits a reference; balancing and planning work
on block indices; each shard's writer reads its blocks back from the spill
files (see ``spill``). Memory is bounded by one shard, whatever the corpus.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs import common_voice as cv
from beam_jobs import runner, spill
from beam_jobs.balance import BalanceBlocks, BalanceClips
from beam_jobs.decode import DecodeAudio
from beam_jobs.read import CapClipsPerSpeaker, LimitClips, ReadClips, SplitBySpeaker, expand_locale_dirs
from beam_jobs.write import (
    ComputeStats,
    CountSplits,
    PlanShards,
    VerifyShards,
    WriteMetadata,
    WriteRejected,
    WriteShards,
)
from pipeline import features


class JobError(Exception):
    """A problem found before any work starts (bad input paths, output exists)."""


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Everything the job needs; built once from flags in ``preprocess.main``.

    Attributes:
      cv_dirs: locale directories or release roots (local or gs://).
      output_dir: where shards, rejected-*.tsv and metadata.json go.
      feature_set: spectrogram parameters (block length included).
      split_fractions: (train, validation, test) speaker fractions.
      use_official_splits: use the release's train/dev/test.tsv instead.
      max_clips_per_speaker: cap per client_id (0: no cap).
      max_blocks_per_clip: cap per clip, evenly spaced (0: no cap).
      balance_clips: balance genders by clips before decoding (drops clips
        of the larger gender); blocks are balanced either way. Off keeps every
        clip's voice in the data (more speakers of the larger gender, fewer
        blocks each).
      seed: drives every random choice (split, caps, balance, order).
      limit_clips: keep only this many labelled clips (0: all), for quick runs.
      target_shard_mb: uncompressed megabytes per output shard.
      overwrite: replace the outputs of an earlier run in output_dir.
      max_clip_seconds: longer clips are rejected as ``too_long``, judged from
        the file's header before decoding (Common Voice clips last <= 10 s).
    """

    cv_dirs: tuple[str, ...]
    output_dir: str
    feature_set: features.FeatureSet = features.LOG_MEL
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    use_official_splits: bool = False
    max_clips_per_speaker: int = 20
    max_blocks_per_clip: int = 10
    balance_clips: bool = True
    seed: int = 42
    limit_clips: int = 0
    target_shard_mb: float = 128.0
    overwrite: bool = False
    max_clip_seconds: float = 120.0

    def __post_init__(self):
        if not self.cv_dirs:
            raise ValueError("at least one --cv_dir is needed")
        if not self.output_dir:
            raise ValueError("--output_dir is needed")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions):
            raise ValueError(f"split fractions must be 3 non-negative numbers, got {self.split_fractions}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {self.split_fractions}")
        if self.target_shard_mb <= 0:
            raise ValueError("target_shard_mb must be positive")
        if self.max_clip_seconds <= 0:
            raise ValueError("max_clip_seconds must be positive")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["feature_set"] = self.feature_set.name
        return d


def check_inputs(config: PreprocessConfig) -> list[str]:
    """Fails fast, before any work, on input that cannot be read at all.

    Returns:
      The locale directories found.

    Raises:
      JobError: naming the path and the reason.
    """
    return check_cv_dirs(config.cv_dirs, list(cv.OFFICIAL_SPLIT_TSVS) if config.use_official_splits else [])


def check_cv_dirs(cv_dirs: Sequence[str], extra_tsvs: Sequence[str] = ()) -> list[str]:
    """Lists the locale directories of ``cv_dirs`` and checks each TSV opens.

    Args:
      cv_dirs: locale directories or release roots.
      extra_tsvs: TSVs each locale needs besides validated.tsv.

    Returns:
      The locale directories found.

    Raises:
      JobError: naming the path and the reason.
    """
    locales = []
    for cv_dir in cv_dirs:
        try:
            found = expand_locale_dirs(cv_dir)
        except Exception as e:
            raise JobError(f"cannot list --cv_dir {cv_dir}: {e}") from None
        if not found:
            raise JobError(
                f"--cv_dir {cv_dir}: no {cv.VALIDATED_TSV} in it or in its subdirectories "
                "(expected a Common Voice locale directory or release root)"
            )
        for locale_dir in found:
            for name in [cv.VALIDATED_TSV, *extra_tsvs]:
                path = cv.join(locale_dir, name)
                try:
                    with FileSystems.open(path) as f:
                        f.read(1)
                except Exception as e:
                    raise JobError(f"cannot read {path}: {type(e).__name__}: {e}") from None
        locales.extend(found)
    return locales


OUTPUT_PATTERNS = tuple(features.shard_pattern(s) for s in features.SPLITS) + (
    f"{features.REJECTED_PREFIX}-*.tsv",
    features.METADATA_FILENAME,
)


def prepare_output(config: PreprocessConfig) -> None:
    """Refuses to mix runs in one directory; with ``overwrite``, clears the old outputs.

    Raises:
      JobError: if output_dir holds files and overwrite is off.
    """
    existing = FileSystems.match([cv.join(config.output_dir, "*")])[0].metadata_list
    if not existing:
        return
    if not config.overwrite:
        raise JobError(
            f"--output_dir {config.output_dir} is not empty ({len(existing)} files, e.g. "
            f"{existing[0].path}); old and new shards would mix. Choose another directory "
            "or pass --overwrite to replace this job's earlier outputs."
        )
    old = FileSystems.match([cv.join(config.output_dir, p) for p in OUTPUT_PATTERNS])
    paths = [m.path for result in old for m in result.metadata_list]
    if paths:
        logging.info("--overwrite: deleting %d earlier outputs in %s", len(paths), config.output_dir)
        FileSystems.delete(paths)


def _count(pcoll, name: str):
    return pcoll | f"Count{name}" >> beam.combiners.Count.Globally() | f"Name{name}" >> beam.Map(
        lambda n: (name, n)
    )


def static_metadata(config: PreprocessConfig) -> dict[str, Any]:
    """The metadata fields known before the job runs."""
    return {
        "format_version": features.FORMAT_VERSION,
        "feature_set": config.feature_set.to_dict(),
        "keys": {
            "block": features.BLOCK_KEY,
            "label": features.LABEL_KEY,
            "clip_id": features.CLIP_ID_KEY,
            "speaker_id": features.SPEAKER_ID_KEY,
            "block_index": features.BLOCK_INDEX_KEY,
            "age": features.AGE_KEY,
            "accent": features.ACCENT_KEY,
        },
        "labels": list(features.GENDER_NAMES),
        "compression": features.SHARD_COMPRESSION,
        "sources": list(config.cv_dirs),
        "flags": config.to_dict(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def build(p: beam.Pipeline, config: PreprocessConfig, spill_dir: str, progress_dir: str | None = None) -> None:
    """Adds the whole job to pipeline ``p``; reads and writes nothing yet.

    Args:
      p: the pipeline.
      config: the job's settings.
      spill_dir: where decoded blocks wait for their shard (see ``spill``).
      progress_dir: a local directory for progress files, or None (remote runners).
    """
    fs, seed, out = config.feature_set, config.seed, config.output_dir
    official = config.cv_dirs if config.use_official_splits else None

    labelled, bad_rows = p | "ReadClips" >> ReadClips(config.cv_dirs)
    limited = labelled | "LimitClips" >> LimitClips(config.limit_clips, seed)
    capped = limited | "CapClipsPerSpeaker" >> CapClipsPerSpeaker(config.max_clips_per_speaker, seed)
    keyed, unsplit = capped | "SplitBySpeaker" >> SplitBySpeaker(seed, config.split_fractions, official)
    balanced = keyed | "BalanceClips" >> BalanceClips(seed) if config.balance_clips else keyed
    decoded, bad_audio = balanced | "DecodeAudio" >> DecodeAudio(fs, config.max_blocks_per_clip, spill_dir,
                                                                 progress_dir, config.max_clip_seconds)
    kept = decoded | "BalanceBlocks" >> BalanceBlocks(seed)
    # Every record of a feature set has the same size up to its ids (< 1 KiB).
    record_bytes = fs.block_nbytes + 1024
    entries, shard_counts, planned = kept | "PlanShards" >> PlanShards(
        seed, record_bytes, int(config.target_shard_mb * 2**20))
    written, train_stats = entries | "WriteShards" >> WriteShards(out, fs, shard_counts, progress_dir)
    read_back = written | "VerifyShards" >> VerifyShards(planned)
    rejected = (bad_rows, unsplit, bad_audio) | "AllRejections" >> beam.Flatten()
    _ = rejected | "WriteRejected" >> WriteRejected(out)

    rejected_counts = (
        rejected
        | "Reasons" >> beam.Map(lambda r: r.reason)
        | "CountReasons" >> beam.combiners.Count.PerElement()
        | "ReasonDict" >> beam.combiners.ToDict()
    )
    funnel = (
        (
            _count(labelled, "labelled"),
            _count(limited, "after_limit"),
            _count(capped, "after_speaker_cap"),
            _count(keyed, "after_split"),
            _count(balanced, "after_clip_balance"),
            _count(decoded, "decoded"),
            _count(kept, "written"),
        )
        | "FunnelParts" >> beam.Flatten()
        | "Funnel" >> beam.combiners.ToDict()
    )
    blocks_decoded = (
        decoded | "DecodedBlocks" >> beam.Map(lambda c: len(c.block_indices)) | "SumDecoded" >> beam.CombineGlobally(sum)
    )
    # Written last, once every shard has been read back and matched the plan.
    _ = {
        "splits": kept | "CountSplits" >> CountSplits(),
        "normalization": train_stats | "ComputeStats" >> ComputeStats(),
        "rejected": rejected_counts,
        "clip_funnel": funnel,
        "blocks_decoded": blocks_decoded,
        "shards": shard_counts,
        "blocks_read_back": read_back,
    } | "WriteMetadata" >> WriteMetadata(out, static_metadata(config))


def run(config: PreprocessConfig, beam_args: Sequence[str] = ()) -> dict[str, Any] | None:
    """Checks inputs, builds and runs the job; removes its spill files whatever happens.

    Args:
      config: the job's settings.
      beam_args: Beam pipeline options, passed through untouched.

    Returns:
      The written metadata (None for a dry run).

    Raises:
      JobError: before any work, for unreadable input or a non-empty output.
    """
    options = PipelineOptions(list(beam_args))
    dry_run = runner.is_dry_run(options)
    if not dry_run:
        # A dry run must work offline: Dataflow graphs are built without GCS.
        locales = check_inputs(config)
        logging.info("Found %d locale(s): %s", len(locales), ", ".join(cv.locale_of(d) for d in locales[:20]))
        prepare_output(config)
    spill_dir = spill.new_spill_dir(config.output_dir)
    try:
        ran = runner.run_pipeline(lambda p, progress_dir: build(p, config, spill_dir, progress_dir), options)
    finally:
        if not dry_run:
            spill.delete_spill_dir(spill_dir)
    if not ran:
        return None
    with FileSystems.open(cv.join(config.output_dir, features.METADATA_FILENAME)) as f:
        return json.loads(f.read())


def summarize(metadata: dict[str, Any], output_dir: str) -> str:
    """A readable end-of-job summary of the metadata."""
    funnel = metadata.get("clip_funnel", {})
    lines = [
        f"Wrote {output_dir}",
        "Clips: "
        + ", ".join(f"{k}={funnel[k]}" for k in (
            "labelled", "after_limit", "after_speaker_cap", "after_split",
            "after_clip_balance", "decoded", "written") if k in funnel),
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
    lines.append(f"Rejected clips listed in {cv.join(output_dir, features.REJECTED_PREFIX)}-*.tsv")
    return "\n".join(lines)
