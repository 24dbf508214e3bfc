"""The preprocessing job's graph: ``build()`` composes it, ``run()`` checks, runs and cleans up around it.

Its config is ``beam_jobs.config``; the pre-flight checks of the inputs live
in ``beam_jobs.read``, the output directory's housekeeping in
``beam_jobs.outputs``, the end-of-run summary in ``beam_jobs.summary``.

``build()`` composes the named PTransforms in the order the data flows:

  ReadClips -> LimitClips -> CapClipsPerSpeaker -> SplitBySpeaker ->
  BalanceClips -> DecodeAudio -> BalanceBlocks -> PlanShards -> WriteShards
  -> VerifyShards, with WriteRejected, WriteMetadata and WriteSummary beside them.

Only small records cross a shuffle: DecodeAudio spills each clip's blocks to
a file of its own bundle and emits a reference; balancing and planning work
on block indices; each shard's writer reads its blocks back from the spill
files (see ``spill``). No spectrogram is held beyond one shard's writer; the
small per-clip records still sit in the local runner's memory between stages,
so ``run()`` splits a large local run into windows of speakers (``windows``).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs import outputs, read, runner, spill, summary, windows
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
)
from beam_jobs.summary import WriteSummary
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
from pipeline import common_voice as cv
from pipeline import features


def _recorded(item) -> bool:
    """A decoded or kept clip that was recorded, not an augmented copy."""
    return not item.clip.augmentation


# The clip funnel's stages, in the order a clip passes them (metadata.json keeps this order).
FUNNEL_STAGES = ("labelled", "after_limit", "after_speaker_cap", "after_split", "after_clip_balance", "decoded",
                 "augmented_copies", "written")


class Tally(beam.PTransform):
    """Named counts of several collections in one combine: ``{name: total}``, zero for an empty one.

    One ``CombinePerKey`` instead of a ``Count.Globally`` per collection: each global combine
    adds its own default-value stages, and the graph's stages are what a short job's start-up
    costs (WORKSPACE.md, issue 24).
    """

    def __init__(self, names: Sequence[str]):
        super().__init__()
        self._names = tuple(names)

    def expand(self, named_amounts):
        names = self._names
        return (
            named_amounts
            | "AllAmounts" >> beam.Flatten()
            | "SumPerName" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "WithZeros" >> beam.Map(lambda totals: {name: int(totals.get(name, 0)) for name in names})
        )


def named_amounts(pcoll: beam.PCollection, name: str,
                  amount: Callable[[Any], int] = lambda _: 1) -> beam.PCollection:
    """``(name, amount(element))`` for each element (a clip counts 1 unless told otherwise)."""
    return pcoll | f"Amount{name}" >> beam.Map(lambda element: (name, amount(element)))


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


def build(p: beam.Pipeline, config: PreprocessConfig, spill_dir: str, progress_dir: str | None = None,
          window: read.Window | None = None) -> None:
    """Adds the whole job to pipeline ``p``; reads and writes nothing yet.

    Longer than most functions on purpose: it is the job's outline, one named
    composite per line in data-flow order (like Beam's ``complete/game``), and
    splitting it would hide the graph the reader came here to see.

    Args:
      p: the pipeline.
      config: the job's settings.
      spill_dir: where decoded blocks wait for their shard (see ``spill``).
      progress_dir: a local directory for progress files, or None (remote runners).
      window: (index, count, seed) to read only that window's speakers (``windows``), or None: all.
    """
    fs, seed, out = config.feature_set, config.seed, config.output_dir
    official = config.cv_dirs if config.use_official_splits else None

    labelled, bad_rows = p | "ReadClips" >> ReadClips(config.cv_dirs, window=window)
    limited = labelled | "LimitClips" >> LimitClips(config.limit_clips, seed)
    capped = limited | "CapClipsPerSpeaker" >> CapClipsPerSpeaker(config.max_clips_per_speaker, seed)
    keyed, unsplit = capped | "SplitBySpeaker" >> SplitBySpeaker(seed, config.split_fractions, official,
                                                                         window[0] if window else 0)
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
    tallies = (
        named_amounts(labelled, "labelled"),
        named_amounts(limited, "after_limit"),
        named_amounts(capped, "after_speaker_cap"),
        named_amounts(keyed, "after_split"),
        named_amounts(balanced, "after_clip_balance"),
        # The funnel follows the recordings; augmented train copies are counted beside it. One pass over the
        # decoded clips gives all three of their amounts.
        decoded | "DecodedAmounts" >> beam.FlatMap(
            lambda c: [("decoded" if _recorded(c) else "augmented_copies", 1), ("blocks_decoded", len(c.block_indices))]),
        named_amounts(kept | "RecordedKept" >> beam.Filter(_recorded), "written"),
    ) | "Tally" >> Tally((*FUNNEL_STAGES, "blocks_decoded"))
    funnel = tallies | "Funnel" >> beam.Map(lambda t: {stage: t[stage] for stage in FUNNEL_STAGES})
    blocks_decoded = tallies | "BlocksDecoded" >> beam.Map(lambda t: t["blocks_decoded"])
    # Written last, once every shard has been read back and matched the plan.
    committed = {
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
    _ = committed | "WriteSummary" >> WriteSummary(out)


def run(config: PreprocessConfig, beam_args: Sequence[str] = ()) -> dict[str, Any] | None:
    """Checks inputs, builds and runs the job; removes its spill files whatever happens.

    A local run over more validated.tsv rows than ``config.window_clips`` runs once per
    window of speakers and merges the windows (``windows``).

    Args:
      config: the job's settings.
      beam_args: Beam pipeline options, passed through untouched.

    Returns:
      The written metadata (None for a dry run).

    Raises:
      runner.JobError: before any work, for unreadable input or a non-empty output.
    """
    options = PipelineOptions(list(beam_args))
    dry_run = runner.is_dry_run(options)
    before: set[str] = set()
    count = 1
    if not dry_run:
        # A dry run must work offline: Dataflow graphs are built without GCS.
        locales = read.check_inputs(config)
        logging.info("Found %d locale(s): %s", len(locales), ", ".join(cv.locale_of(d) for d in locales[:20]))
        before = outputs.prepare_output(config)
        if (runner.is_local(options) and windows.can_window(config.output_dir) and not config.limit_clips
                and config.window_clips):
            count = windows.window_count(read.count_rows(locales), config.window_clips)
    try:
        if count == 1:
            ran = _run_once(config, options, config.output_dir, dry_run)
        else:
            ran = _run_windows(config, options, count)
    finally:
        if not dry_run:
            outputs.finish_output(config.output_dir, before)
    if ran is None:
        return None
    return read_written_metadata(config.output_dir)


def _run_once(config: PreprocessConfig, options: PipelineOptions, output_dir: str, dry_run: bool,
              window: read.Window | None = None):
    """One pass of the graph into ``output_dir``, its spill files removed whatever happens."""
    config = dataclasses.replace(config, output_dir=output_dir)
    spill_dir = spill.new_spill_dir(output_dir)
    try:
        return runner.run_pipeline(lambda p, progress_dir: build(p, config, spill_dir, progress_dir, window), options)
    finally:
        if not dry_run:
            spill.delete_spill_dir(spill_dir)


def _run_windows(config: PreprocessConfig, options: PipelineOptions, count: int):
    """The graph once per window of speakers, each into its own directory, then merged into the output."""
    directories = [windows.window_dir(config.output_dir, i, count) for i in range(count)]
    windows.remove_windows(config.output_dir)  # a killed run's windows must not be read as this run's
    try:
        ran = None
        for i, directory in enumerate(directories):
            logging.info("Window %d of %d: the clips of a 1/%d share of the speakers (memory is bounded by a "
                         "window; --window_clips=%d)", i + 1, count, count, config.window_clips)
            ran = _run_once(config, options, directory, False, (i, count, config.seed))
        summary.write_summary(windows.merge(directories, config.output_dir, static_metadata(config)), config.output_dir)
        return ran
    finally:
        windows.remove_windows(config.output_dir)


def read_written_metadata(output_dir: str) -> dict[str, Any]:
    """The metadata a finished run committed.

    Raises:
      runner.UnusableDataError: the run wrote ``metadata.incomplete.json`` instead (no
        training block, a gender missing from a split, non-finite statistics),
        with its problems.
    """
    incomplete = cv.join(output_dir, INCOMPLETE_METADATA_FILENAME)
    if FileSystems.exists(incomplete):
        with FileSystems.open(incomplete) as f:
            problems = json.loads(f.read()).get("problems", [])
        raise runner.UnusableDataError(f"the data in {output_dir} cannot train a model: {'; '.join(problems)}. Nothing was "
                       f"committed as metadata.json; see {incomplete} and the rejected-*.tsv files for why")
    with FileSystems.open(cv.join(output_dir, features.METADATA_FILENAME)) as f:
        return json.loads(f.read())
