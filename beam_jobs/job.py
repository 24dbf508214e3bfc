"""The preprocessing job: pre-flight checks and composition (its config: ``beam_jobs.config``).

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

import datetime
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs import common_voice as cv
from beam_jobs import runner, spill
from beam_jobs.balance import BalanceBlocks, BalanceClips
from beam_jobs.config import PreprocessConfig
from beam_jobs.decode import CopySettings, DecodeAudio
from beam_jobs.read import (
    CapClipsPerSpeaker,
    LimitClips,
    LostSources,
    MixedGenderSpeakers,
    ReadClips,
    SplitBySpeaker,
    expand_locale_dirs,
    not_a_regular_file,
)
from beam_jobs.write import (
    INCOMPLETE_METADATA_FILENAME,
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
    """A problem found before any work starts (bad input paths, output exists): the command is wrong."""

    exit_status = 2


class UnusableDataError(JobError):
    """The job ran, but its data cannot train a model (``metadata.incomplete.json`` was written)."""

    exit_status = 1


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
                if not_a_regular_file(path):
                    continue  # never opened (a FIFO would hang): the job rejects it, naming it, and goes on
                try:
                    with FileSystems.open(path) as f:
                        f.read(1)
                except Exception as e:
                    raise JobError(f"cannot read {path}: {type(e).__name__}: {e}") from None
        locales.extend(found)
    return locales


# The run's own record of what it wrote: ``--overwrite`` deletes these files and nothing else.
MANIFEST_FILENAME = "voicegender-manifest.json"
# Every name the job writes (user files never match: the shard and rejected
# names carry exact zero-padded counters).
OUTPUT_PATTERNS = tuple(
    f"{split}-?????-of-?????{features.SHARD_SUFFIX}" for split in features.SPLITS
) + (
    f"{features.REJECTED_PREFIX}-?????-of-?????.tsv",
    features.METADATA_FILENAME,
    INCOMPLETE_METADATA_FILENAME,
)
BEAM_TEMP_PATTERNS = ("beam-temp-*", "beam-temp-*/*")  # text sinks' scratch (a prefix on GCS)


def _matching(output_dir: str, patterns: Sequence[str]) -> set[str]:
    results = FileSystems.match([cv.join(output_dir, p) for p in patterns])
    return {m.path for result in results for m in result.metadata_list}


def check_output_writable(output_dir: str, flag: str = "--output_dir") -> None:
    """Creates ``output_dir`` if needed and proves a file can be written there.

    Args:
      output_dir: the directory.
      flag: the flag that named it, for the message.

    Raises:
      JobError: the path is a file, or cannot be created or written (read-only,
        permissions), with the system's reason.
    """
    if "://" not in output_dir and os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise JobError(f"{flag} {output_dir} is a file, not a directory")
    probe = cv.join(output_dir, ".voicegender-write-test")
    try:
        FileSystems.mkdirs(output_dir)
    except Exception:  # noqa: BLE001 (BeamIOError when it exists; if it cannot be made, the probe says why)
        pass
    try:
        with FileSystems.create(probe) as f:
            f.write(b"")
        FileSystems.delete([probe])
    except Exception as e:  # noqa: BLE001 (OSError locally, BeamIOError on GCS)
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [""])[0][:200]
        raise JobError(f"{flag} {output_dir}: cannot write there ({reason})") from None


def prepare_output(config: PreprocessConfig) -> set[str]:
    """Refuses to mix runs in one directory; with ``overwrite``, deletes what an earlier run's manifest lists.

    Returns:
      The files left in ``output_dir`` (the user's own, with ``overwrite``).

    Raises:
      JobError: output_dir is not writable, or holds files and ``overwrite``
        is off, or holds files but no manifest (they are not this job's to delete).
    """
    out = config.output_dir
    check_output_writable(out)
    existing = _matching(out, ["*"])
    if not existing:
        return set()
    if not config.overwrite:
        raise JobError(
            f"--output_dir {out} is not empty ({len(existing)} files, e.g. {sorted(existing)[0]}); old and new "
            "shards would mix. Choose another directory or pass --overwrite to replace this job's earlier outputs."
        )
    manifest = cv.join(out, MANIFEST_FILENAME)
    if not FileSystems.exists(manifest):
        raise JobError(f"--overwrite: {out} holds files but no {MANIFEST_FILENAME}, so none of them is known to "
                       "be this job's output; nothing was deleted. Remove them yourself or choose another directory.")
    with FileSystems.open(manifest) as f:
        listed = {cv.join(out, name) for name in json.loads(f.read())["files"]}
    doomed = sorted((listed & existing) | _matching(out, BEAM_TEMP_PATTERNS)) + [manifest]
    logging.info("--overwrite: deleting %d files an earlier run wrote in %s", len(doomed), out)
    FileSystems.delete(doomed)
    return existing - set(doomed)


def finish_output(output_dir: str, before: set[str]) -> None:
    """Removes Beam's temp folders and writes the manifest of what this run wrote (also after a failure).

    Args:
      output_dir: the job's output directory.
      before: the files it held before the run (``prepare_output``'s result).
    """
    temp = _matching(output_dir, BEAM_TEMP_PATTERNS)
    if temp:
        FileSystems.delete(sorted(temp))
    written = _matching(output_dir, OUTPUT_PATTERNS) - before
    with FileSystems.create(cv.join(output_dir, MANIFEST_FILENAME)) as f:
        names = sorted(path.rsplit("/", 1)[-1] for path in written)
        f.write(json.dumps({"files": names}, indent=1).encode("utf-8"))


def _recorded(item) -> bool:
    """A decoded or kept clip that was recorded, not an augmented copy."""
    return not item.clip.augmentation


def _count(pcoll, name: str):
    return pcoll | f"Count{name}" >> beam.combiners.Count.Globally() | f"Name{name}" >> beam.Map(
        lambda n: (name, n)
    )


def static_metadata(config: PreprocessConfig) -> dict[str, Any]:
    """The metadata fields known before the job runs."""
    return {
        "format_version": features.FORMAT_VERSION,
        "feature_set": config.feature_set.to_dict(),
        "keys": dict(features.RECORD_KEYS),
        "labels": list(features.GENDER_NAMES),
        "compression": features.SHARD_COMPRESSION,
        "sources": list(config.cv_dirs),
        "flags": config.to_dict(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def build(p: beam.Pipeline, config: PreprocessConfig, spill_dir: str, progress_dir: str | None = None) -> None:
    """Adds the whole job to pipeline ``p``; reads and writes nothing yet.

    Longer than most functions on purpose: it is the job's outline, one named
    composite per line in data-flow order (like Beam's ``complete/game``), and
    splitting it would hide the graph the reader came here to see.

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
    balanced, unbalanced = keyed | "BalanceClips" >> BalanceClips(seed) if config.balance_clips else (keyed, None)
    copies = CopySettings(config.augment_copies, config.augment_fraction, config.augment_female_lowered,
                          config.augment_max_f0_factor, config.augment_max_f0_rise_hz)
    decoded, bad_audio = balanced | "DecodeAudio" >> DecodeAudio(fs, config.max_blocks_per_clip, spill_dir,
                                                                 progress_dir, config.max_clip_seconds, seed, copies)
    kept, emptied = decoded | "BalanceBlocks" >> BalanceBlocks(seed)
    # Every record of a feature set has the same size up to its ids (< 1 KiB).
    record_bytes = fs.block_nbytes + 1024
    entries, shard_counts, planned = kept | "PlanShards" >> PlanShards(
        seed, record_bytes, int(config.target_shard_mb * 2**20))
    written, train_stats = entries | "WriteShards" >> WriteShards(out, fs, shard_counts, progress_dir)
    read_back = written | "VerifyShards" >> VerifyShards(planned)
    rejections = (bad_rows, unsplit, unbalanced, bad_audio, emptied)
    rejected = tuple(r for r in rejections if r is not None) | "AllRejections" >> beam.Flatten()
    _ = rejected | "WriteRejected" >> WriteRejected(out)

    sources_lost = rejected | "LostSources" >> LostSources()
    mixed_speakers = labelled | "MixedGenderSpeakers" >> MixedGenderSpeakers()
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
            # The funnel follows the recordings; augmented train copies are counted beside it.
            _count(decoded | "Recorded" >> beam.Filter(_recorded), "decoded"),
            _count(decoded | "Copies" >> beam.Filter(lambda c: not _recorded(c)), "augmented_copies"),
            _count(kept | "RecordedKept" >> beam.Filter(_recorded), "written"),
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
        "lost_sources": sources_lost,
        "speakers_with_both_genders": mixed_speakers,
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
    before: set[str] = set()
    if not dry_run:
        # A dry run must work offline: Dataflow graphs are built without GCS.
        locales = check_inputs(config)
        logging.info("Found %d locale(s): %s", len(locales), ", ".join(cv.locale_of(d) for d in locales[:20]))
        before = prepare_output(config)
    spill_dir = spill.new_spill_dir(config.output_dir)
    try:
        ran = runner.run_pipeline(lambda p, progress_dir: build(p, config, spill_dir, progress_dir), options)
    finally:
        if not dry_run:
            spill.delete_spill_dir(spill_dir)
            finish_output(config.output_dir, before)
    if ran is None:
        return None
    return read_written_metadata(config.output_dir)


def read_written_metadata(output_dir: str) -> dict[str, Any]:
    """The metadata a finished run committed.

    Raises:
      JobError: the run wrote ``metadata.incomplete.json`` instead (no
        training block, a gender missing from a split, non-finite statistics),
        with its problems.
    """
    incomplete = cv.join(output_dir, INCOMPLETE_METADATA_FILENAME)
    if FileSystems.exists(incomplete):
        with FileSystems.open(incomplete) as f:
            problems = json.loads(f.read()).get("problems", [])
        raise UnusableDataError(f"the data in {output_dir} cannot train a model: {'; '.join(problems)}. Nothing was "
                       f"committed as metadata.json; see {incomplete} and the rejected-*.tsv files for why")
    with FileSystems.open(cv.join(output_dir, features.METADATA_FILENAME)) as f:
        return json.loads(f.read())


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
