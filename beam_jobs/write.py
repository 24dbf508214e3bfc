"""Writing the outputs: PlanShards, WriteShards (TFRecords), VerifyShards, WriteRejected, ComputeStats, WriteMetadata."""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import progress, spill
from beam_jobs.balance import KeptBlocks
from beam_jobs.read import split_label_key
from beam_jobs.rejections import NAMESPACE
from beam_jobs.spill import SpillRef
from pipeline import common_voice as cv
from pipeline import features, records, tfrecords

# Beam's name for the shard compression features.SHARD_COMPRESSION declares.
SHARD_FILE_COMPRESSION = {"": CompressionTypes.UNCOMPRESSED, "GZIP": CompressionTypes.GZIP}[
    features.SHARD_COMPRESSION]
TRAIN_STATS = "train_stats"


class ShardCheckError(RuntimeError):
    """The shards on disk do not hold what the plan says: the job fails rather than lose data quietly."""


def shard_count(total_bytes: int, target_bytes: int, max_shards: int = 1024) -> int:
    """Shards for a split: each about ``target_bytes`` uncompressed, at least 1."""
    return max(1, min(max_shards, math.ceil(total_bytes / max(1, target_bytes))))


ShardKey = tuple[str, int, int]  # (split, shard index, shard count)


@dataclasses.dataclass(frozen=True)
class ShardEntry:
    """The blocks of one clip that go to one shard: what a shard writer needs, by reference.

    Attributes:
      clip: the clip's TSV row (label and ids for the records).
      spill: where the clip's blocks wait.
      blocks: (order, block index, spill slot) per block; ``order`` is a
        seeded uniform key in [0, 1) that picked the shard and sorts the block
        inside it.
    """

    clip: cv.Clip
    spill: SpillRef
    blocks: tuple[tuple[float, int, int], ...]


def plan_clip(kept: KeptBlocks, counts: dict[str, int], seed: str) -> Iterable[tuple[ShardKey, ShardEntry]]:
    """Spreads a clip's kept blocks over its split's shards by a seeded key per block."""
    num_shards = counts[kept.split]
    by_shard: dict[int, list[tuple[float, int, int]]] = {}
    for index, slot in zip(kept.block_indices, kept.slots, strict=True):
        order = cv.stable_fraction("order", seed, kept.clip.clip_id, str(index))
        by_shard.setdefault(min(num_shards - 1, int(order * num_shards)), []).append((order, index, slot))
    for shard, blocks in sorted(by_shard.items()):
        yield (kept.split, shard, num_shards), ShardEntry(kept.clip, kept.spill, tuple(blocks))


class PlanShards(beam.PTransform):
    """KeptBlocks -> (keyed ShardEntries, {split: shard count}, {shard key: planned records}).

    The shard count of each split follows its size (about ``target_bytes``
    uncompressed per shard: the tf.data guide's "many files, each not tiny"),
    which Beam's fixed ``num_shards`` cannot do. Sizes are counted on the small
    block plans (every record of a feature set has the same size, up to its
    ids).
    """

    def __init__(self, seed: int, record_bytes: int, target_bytes: int):
        super().__init__()
        self._seed = str(seed)
        self._record_bytes = record_bytes
        self._target_bytes = target_bytes

    def expand(self, kept):
        record_bytes, target = self._record_bytes, self._target_bytes
        split_counts = (
            kept
            | "BlocksPerSplit" >> beam.Map(lambda k: (k.split, len(k.block_indices)))
            | "Sum" >> beam.CombinePerKey(sum)
            | "ShardCount" >> beam.MapTuple(lambda split, n: (split, shard_count(n * record_bytes, target)))
            | "ToDict" >> beam.combiners.ToDict()
        )
        entries = kept | "Plan" >> beam.FlatMap(plan_clip, beam.pvalue.AsSingleton(split_counts), self._seed)
        planned = (
            entries
            | "RecordsPerShard" >> beam.MapTuple(lambda key, entry: (key, len(entry.blocks)))
            | "SumPerShard" >> beam.CombinePerKey(sum)
        )
        return entries, split_counts, planned


def all_shard_keys(split_counts: dict[str, int]) -> list[ShardKey]:
    """Every shard of every split, so a shard no block hashed to is still written (``-of-N`` holds N files)."""
    return [(split, i, n) for split, n in sorted(split_counts.items()) for i in range(n)]


def partial_stats(blocks: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(frames, per-bin sum, per-bin sum of squares) of [n, frames, bins] blocks, in float64."""
    frames = blocks.reshape(-1, blocks.shape[-1]).astype(np.float64)
    return len(frames), frames.sum(axis=0), np.square(frames).sum(axis=0)


@dataclasses.dataclass(frozen=True)
class WrittenShard:
    """What a shard writer wrote: its key, path and record count."""

    key: ShardKey
    path: str
    records: int


class _WriteShardFn(beam.DoFn):
    """Reads one shard's blocks from the spill files, encodes, orders and writes them.

    Blocks are read in spill-file order (each file opened once) and their
    records appended to a local scratch file; the shard is then written in
    the seeded order from the scratch file. Memory holds one block and the
    shard's small index, never the shard. Train shards also emit their
    partial statistics, so the normalization sees exactly the blocks written.
    """

    def __init__(self, output_dir: str, feature_set: features.FeatureSet, progress_dir: str | None = None):
        self._output_dir = output_dir
        self._feature_set = feature_set
        self._progress_dir = progress_dir
        self._progress = None
        self._written = Metrics.counter(NAMESPACE, progress.SHARDS_WRITTEN)
        self._blocks = Metrics.counter(NAMESPACE, "blocks_written")

    def setup(self):
        self._progress = progress.ProgressFile(self._progress_dir)

    def process(self, element, counts: dict[str, int]) -> Iterable:
        (split, shard, count), grouped = element
        self._progress.set(progress.SHARDS_PLANNED, sum(counts.values()))
        entries: list[ShardEntry] = list(grouped["entries"])
        requests = [(e.spill, [slot for _, _, slot in e.blocks]) for e in entries]
        wanted = {(i, slot): (order, index) for i, e in enumerate(entries) for order, index, slot in e.blocks}
        index: list[tuple[float, str, int, int, int]] = []  # (order, clip id, block index, offset, length)
        stats = (0, 0.0, 0.0)
        with tempfile.TemporaryFile(prefix="voicegender_shard_") as scratch:
            offset = 0
            for i, slot, block in spill.read_blocks(requests, self._feature_set.block_shape):
                clip = entries[i].clip
                order, block_index = wanted[(i, slot)]
                if not np.isfinite(block).all():
                    # Decoding rejects non-finite clips; reaching here means a corrupt spill file.
                    raise ValueError(f"non-finite block {clip.clip_id}#{block_index} read from {entries[i].spill.path}")
                if split == features.TRAIN:
                    stats = _merge_stats(stats, partial_stats(block[None]))
                record = records.encode_block(block, clip.label, clip.clip_id, clip.speaker_id, block_index, clip.age,
                                              clip.accent, clip.augmentation)
                scratch.write(record)
                index.append((order, clip.clip_id, block_index, offset, len(record)))
                offset += len(record)
            # A seeded order inside the shard, so consecutive records are not the
            # blocks of one clip (the reader's shuffle buffer then mixes more).
            index.sort()
            path = cv.join(self._output_dir, features.shard_name(split, shard, count))
            with FileSystems.create(path, compression_type=SHARD_FILE_COMPRESSION) as f:
                for *_, start, length in index:
                    scratch.seek(start)
                    tfrecords.write_record(f, scratch.read(length))
        self._written.inc()
        self._blocks.inc(len(index))
        self._progress.add(progress.SHARDS_WRITTEN)
        self._progress.flush()
        if stats[0]:
            yield beam.pvalue.TaggedOutput(TRAIN_STATS, stats)
        yield WrittenShard((split, shard, count), path, len(index))


def _merge_stats(a, b):
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


class WriteShards(beam.PTransform):
    """Keyed ShardEntries -> TFRecord files ``split-SSSSS-of-NNNNN`` (compression: features.SHARD_COMPRESSION).

    Only the small entries cross the shuffle into a shard; its writer reads the
    blocks from the spill files. Every planned shard is written, empty or not.

    Returns:
      (WrittenShards, partial training statistics).
    """

    def __init__(self, output_dir: str, feature_set: features.FeatureSet, split_counts,
                 progress_dir: str | None = None):
        super().__init__()
        self._output_dir = output_dir
        self._feature_set = feature_set
        self._split_counts = split_counts
        self._progress_dir = progress_dir

    def expand(self, entries):
        keys = (
            self._split_counts
            | "AllShardKeys" >> beam.FlatMap(all_shard_keys)
            | "KeyOnly" >> beam.Map(lambda key: (key, None))
        )
        outputs = (
            {"entries": entries, "shard": keys}
            | "GroupShards" >> beam.CoGroupByKey()
            | "WriteShard" >> beam.ParDo(
                _WriteShardFn(self._output_dir, self._feature_set, self._progress_dir),
                counts=beam.pvalue.AsSingleton(self._split_counts),
            ).with_outputs(TRAIN_STATS, main="written")
        )
        return outputs.written, outputs[TRAIN_STATS]


def read_back(shard: WrittenShard, planned: dict) -> tuple[str, int]:
    """Re-reads a written shard, checks every record's framing and checksums, compares the count with the plan.

    Returns:
      (split, records read back).

    Raises:
      ShardCheckError: the shard holds another count than planned.
      tfrecords.CorruptRecordError: a record is damaged (file and offset named).
    """
    with FileSystems.open(shard.path, compression_type=SHARD_FILE_COMPRESSION) as f:
        found = tfrecords.count_records(f, shard.path)
    expected = planned.get(shard.key, 0)
    if found != expected or found != shard.records:
        raise ShardCheckError(
            f"{shard.path}: {found} records read back, {expected} planned, {shard.records} reported written")
    return shard.key[0], found


class VerifyShards(beam.PTransform):
    """WrittenShards -> {split: records read back}, after checking each shard against the plan."""

    def __init__(self, planned):
        super().__init__()
        self._planned = planned

    def expand(self, written):
        return (
            written
            | "ReadBack" >> beam.Map(read_back, beam.pvalue.AsDict(self._planned))
            | "SumPerSplit" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
        )


def check_against_plan(read_back_counts: dict[str, int], splits: dict[str, Any]) -> dict[str, int]:
    """Compares the blocks read back per split with the planned blocks per split (``CountSplits``).

    Raises:
      ShardCheckError: naming each split whose counts differ.
    """
    problems = []
    for split in features.SPLITS:
        planned = sum(splits[split]["blocks"].values())
        found = read_back_counts.get(split, 0)
        if planned != found:
            problems.append(f"{split}: {found} blocks read back from the shards, {planned} planned")
    if problems:
        raise ShardCheckError("the shards do not hold what was planned: " + "; ".join(problems))
    return {split: read_back_counts.get(split, 0) for split in features.SPLITS}


def _rejection_line(r: cv.Rejection) -> str:
    def clean(s: str) -> str:
        return " ".join(s.split())  # no tabs or newlines inside a TSV field

    return "\t".join((clean(r.item), clean(r.reason), clean(r.detail)))


class WriteRejected(beam.PTransform):
    """Rejections -> ``OUTPUT/rejected-00000-of-00001.tsv`` (clip, reason, detail)."""

    def __init__(self, output_dir: str):
        super().__init__()
        self._output_dir = output_dir

    def expand(self, rejections):
        return (
            rejections
            | "Format" >> beam.Map(_rejection_line)
            | "Write" >> beam.io.WriteToText(
                cv.join(self._output_dir, features.REJECTED_PREFIX),
                file_name_suffix=".tsv",
                num_shards=1,
                header="clip\treason\tdetail",
            )
        )


class MeanStdFn(beam.CombineFn):
    """Per-bin mean and standard deviation from partial sums (``partial_stats``)."""

    def create_accumulator(self):
        return (0, 0.0, 0.0)

    def add_input(self, acc, partial):
        return _merge_stats(acc, partial)

    def merge_accumulators(self, accumulators):
        total = (0, 0.0, 0.0)
        for acc in accumulators:
            total = _merge_stats(total, acc)
        return total

    def extract_output(self, acc) -> dict[str, Any]:
        count, total, total_sq = acc
        if not count:
            return {"frames": 0}
        total, total_sq = np.asarray(total), np.asarray(total_sq)
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        overall_mean = float(total.sum() / (count * len(total)))
        overall_var = float(total_sq.sum() / (count * len(total)) - overall_mean**2)
        stats = {
            "frames": int(count),
            "mean": [float(x) for x in mean],
            "std": [float(x) for x in np.sqrt(var)],
            "global_mean": overall_mean,
            "global_std": math.sqrt(max(overall_var, 0.0)),
        }
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and math.isfinite(overall_var)):
            # Reported by ``completeness_problems``: the metadata is then not committed.
            return {"frames": int(count), "non_finite": True}
        return stats


class ComputeStats(beam.PTransform):
    """Partial statistics of the written training shards -> feature mean/std (one dict)."""

    def expand(self, partials):
        return partials | "MeanStd" >> beam.CombineGlobally(MeanStdFn())


# metadata.json's splits[split][measure][gender]; augmented_* count the augmented train copies among clips/blocks.
SPLIT_MEASURES = ("clips", "blocks", "speakers", "audio_seconds", "augmented_clips", "augmented_blocks")


class CountSplits(beam.PTransform):
    """KeptBlocks -> {"train": {"clips": {...}, "blocks": {...}, ...}, ...} (one dict)."""

    def expand(self, kept):
        def events(c: KeptBlocks):
            key = split_label_key(c.split, c.clip.label)
            yield (key, "clips"), 1
            yield (key, "blocks"), len(c.block_indices)
            yield (key, "audio_seconds"), c.seconds
            if c.clip.augmentation:  # included in the counts above; marked here too
                yield (key, "augmented_clips"), 1
                yield (key, "augmented_blocks"), len(c.block_indices)

        sums = kept | "Events" >> beam.FlatMap(events) | "Sum" >> beam.CombinePerKey(sum)
        speakers = (
            kept
            | "Speakers" >> beam.Map(lambda c: (split_label_key(c.split, c.clip.label), c.clip.speaker_id))
            | "Distinct" >> beam.Distinct()
            | "SpeakerKey" >> beam.MapTuple(lambda key, _: (key, "speakers"))
            | "CountSpeakers" >> beam.combiners.Count.PerElement()
        )
        return (
            (sums, speakers)
            | "Merge" >> beam.Flatten()
            | "All" >> beam.combiners.ToList()
            | "Nest" >> beam.Map(nest_split_counts)
        )


def nest_split_counts(items: list) -> dict[str, Any]:
    """[((split/gender, measure), value)] -> splits[split][measure][gender]."""
    splits: dict[str, Any] = {
        s: {m: {g: 0 for g in features.GENDER_NAMES} for m in SPLIT_MEASURES}
        for s in features.SPLITS
    }
    for (key, measure), value in items:
        split, gender = key.split("/")
        splits[split][measure][gender] = round(value, 2) if measure == "audio_seconds" else int(value)
    return splits


# Written instead of metadata.json when the data cannot train a model (see ``completeness_problems``).
INCOMPLETE_METADATA_FILENAME = "metadata.incomplete.json"


class WriteMetadata(beam.PTransform):
    """Writes ``OUTPUT/metadata.json`` once every side input is computed."""

    def __init__(self, output_dir: str, static: dict[str, Any]):
        super().__init__()
        self._output_dir = output_dir
        self._static = static

    def expand(self, side_inputs: dict):
        singletons = {name: beam.pvalue.AsSingleton(pc) for name, pc in side_inputs.items()}
        output_dir, static = self._output_dir, self._static
        return (
            side_inputs["splits"].pipeline
            | "Once" >> beam.Create([None])
            | "Write" >> beam.Map(lambda _, **kw: write_metadata(output_dir, static, kw), **singletons)
        )


def completeness_problems(splits: dict[str, Any], normalization: dict[str, Any], flags: dict[str, Any]) -> list[str]:
    """Why the written data cannot train and evaluate a model, if it cannot.

    Args:
      splits: ``nest_split_counts`` output.
      normalization: ``MeanStdFn`` output.
      flags: the job's config as a dict (``split_fractions``, ``use_official_splits``).

    Returns:
      One sentence per problem: no training block, a split the user asked for
      that misses a gender, or non-finite normalization statistics. Empty
      when the data is complete.
    """
    problems = []
    train_blocks = sum(splits[features.TRAIN]["blocks"].values())
    if not train_blocks:
        problems.append("no training block was written")
    fractions = dict(zip(features.SPLITS, flags.get("split_fractions") or (1, 1, 1), strict=True))
    for split in features.SPLITS:
        wanted = flags.get("use_official_splits") or fractions[split] > 0
        missing = [g for g in features.GENDER_NAMES if not splits[split]["blocks"][g]]
        if wanted and missing and (split != features.TRAIN or train_blocks):
            problems.append(f"split {split} has no {' and no '.join(missing)} blocks")
    if normalization.get("non_finite"):
        problems.append("the normalization statistics are not finite")
    return problems


def write_metadata(output_dir: str, static: dict[str, Any], computed: dict[str, Any]) -> str:
    """Writes ``metadata.json``, or ``metadata.incomplete.json`` with its ``problems`` when the data is unusable.

    A directory without ``metadata.json`` is not a dataset to ``model.train``,
    so incomplete data can never be trained on by mistake.

    Returns:
      The path written.
    """
    metadata = dict(static)
    metadata.update(computed)
    if "blocks_read_back" in computed:
        metadata["blocks_read_back"] = check_against_plan(computed["blocks_read_back"], computed["splits"])
    problems = completeness_problems(computed["splits"], computed.get("normalization", {}), static.get("flags", {}))
    name = features.METADATA_FILENAME
    if problems:
        metadata["problems"] = problems
        name = INCOMPLETE_METADATA_FILENAME
    path = cv.join(output_dir, name)
    with FileSystems.create(path) as f:
        f.write(json.dumps(metadata, indent=2, sort_keys=True).encode("utf-8"))
    return path
