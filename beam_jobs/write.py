"""Writing the outputs: WriteShards (TFRecords), WriteRejected, ComputeStats, WriteMetadata."""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Iterable
from typing import Any, BinaryIO

import apache_beam as beam
import google_crc32c
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs import common_voice as cv
from beam_jobs.balance import KeptBlocks
from beam_jobs.read import split_label_key
from pipeline import examples, features

# Beam's name for the shard compression features.SHARD_COMPRESSION declares.
SHARD_FILE_COMPRESSION = {"": CompressionTypes.UNCOMPRESSED, "GZIP": CompressionTypes.GZIP}[
    features.SHARD_COMPRESSION]


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def write_tfrecord(stream: BinaryIO, record: bytes) -> None:
    """Appends one record in the TFRecord framing (length, CRCs, data)."""
    length = struct.pack("<Q", len(record))
    stream.write(length + _masked_crc(length) + record + _masked_crc(record))


def shard_count(total_bytes: int, target_bytes: int, max_shards: int = 1024) -> int:
    """Shards for a split: each about ``target_bytes`` uncompressed, at least 1."""
    return max(1, min(max_shards, math.ceil(total_bytes / max(1, target_bytes))))


def _write_missing_shards(split_counts: dict[str, int], written: list[str], output_dir: str):
    """Writes empty shards no record hashed to, so ``-of-N`` always holds N files."""
    present = set(written)
    for split, count in split_counts.items():
        for shard in range(count):
            path = cv.join(output_dir, features.shard_name(split, shard, count))
            if path not in present:
                with FileSystems.create(path, compression_type=SHARD_FILE_COMPRESSION):
                    pass


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """Where each kept block of a clip goes.

    Attributes:
      kept: the clip's kept blocks.
      orders: per kept block, a seeded uniform key in [0, 1): it picks the
        block's shard and its position inside the shard.
      num_shards: the split's shard count.
    """

    kept: KeptBlocks
    orders: tuple[float, ...]
    num_shards: int

    def shard(self, order: float) -> int:
        return min(self.num_shards - 1, int(order * self.num_shards))


class PlanShards(beam.PTransform):
    """KeptBlocks -> ((clip_id, ShardPlan), {split: shard count}).

    The shard count of each split follows its size (about ``target_bytes``
    uncompressed per shard: the tf.data guide's "many files, each not tiny"),
    which Beam's fixed ``num_shards`` cannot do. Sizes are counted on the small
    block plans (every record of a feature set has the same size, up to its
    ids), so the spectrograms never meet a side input.
    """

    def __init__(self, seed: int, record_bytes: int, target_bytes: int):
        super().__init__()
        self._seed = str(seed)
        self._record_bytes = record_bytes
        self._target_bytes = target_bytes

    def expand(self, kept):
        record_bytes, target, seed = self._record_bytes, self._target_bytes, self._seed
        split_counts = (
            kept
            | "BlocksPerSplit" >> beam.Map(lambda k: (k.split, len(k.block_indices)))
            | "Sum" >> beam.CombinePerKey(sum)
            | "ShardCount" >> beam.MapTuple(lambda split, n: (split, shard_count(n * record_bytes, target)))
            | "ToDict" >> beam.combiners.ToDict()
        )

        def plan(k: KeptBlocks, counts: dict[str, int]):
            orders = tuple(cv.stable_fraction("order", seed, k.clip.clip_id, str(i)) for i in k.block_indices)
            return k.clip.clip_id, ShardPlan(k, orders, counts[k.split])

        plans = kept | "Plan" >> beam.Map(plan, beam.pvalue.AsSingleton(split_counts))
        return plans, split_counts


TRAIN_BLOCKS = "train_blocks"


class _CutRecordsFn(beam.DoFn):
    """Joins a clip's blocks with its plan; emits records and the training blocks."""

    def process(self, joined) -> Iterable:
        _, grouped = joined
        plans, data = list(grouped["plan"]), list(grouped["data"])
        # A clip without a plan was dropped by balancing.
        for plan, item in zip(plans[:1], data[:1], strict=False):
            yield from self._cut(plan, item)

    def _cut(self, plan: ShardPlan, item) -> Iterable:
        clip = item.clip
        row_of = {int(i): row for row, i in enumerate(item.block_indices)}
        rows = [row_of[i] for i in plan.kept.block_indices]
        for row, index, order in zip(rows, plan.kept.block_indices, plan.orders, strict=True):
            record = examples.encode_block(
                item.blocks[row], clip.label, clip.clip_id, clip.speaker_id, index, clip.age, clip.accent
            )
            yield (plan.kept.split, plan.shard(order), plan.num_shards), (order, record)
        if plan.kept.split == features.TRAIN:
            yield beam.pvalue.TaggedOutput(TRAIN_BLOCKS, item.blocks[rows])


class CutRecords(beam.PTransform):
    """(plans, ClipBlocks) -> (keyed serialized Examples, training blocks).

    A CoGroupByKey on clip_id brings each clip's spectrograms together with the
    plan made on the small side, without a side input on the big data.
    """

    def expand(self, inputs):
        plans, clip_blocks = inputs
        data = clip_blocks | "ByClipId" >> beam.Map(lambda c: (c.clip.clip_id, c))
        outputs = (
            {"plan": plans, "data": data}
            | "Join" >> beam.CoGroupByKey()
            | "Cut" >> beam.ParDo(_CutRecordsFn()).with_outputs(TRAIN_BLOCKS, main="records")
        )
        return outputs.records, outputs[TRAIN_BLOCKS]


class _WriteShardFn(beam.DoFn):
    def __init__(self, output_dir: str):
        self._output_dir = output_dir

    def process(self, element) -> Iterable[str]:
        (split, shard, count), records = element
        # A seeded order inside the shard, so consecutive records are not the
        # blocks of one clip (the reader's shuffle buffer then mixes more).
        ordered = sorted(records, key=lambda r: r[0])
        path = cv.join(self._output_dir, features.shard_name(split, shard, count))
        with FileSystems.create(path, compression_type=SHARD_FILE_COMPRESSION) as f:
            for _, record in ordered:
                write_tfrecord(f, record)
        yield path


class WriteShards(beam.PTransform):
    """((split, shard, count), (order, record)) -> TFRecord files ``split-SSSSS-of-NNNNN`` (compression: features.SHARD_COMPRESSION).

    Returns:
      The written paths.
    """

    def __init__(self, output_dir: str, split_counts):
        super().__init__()
        self._output_dir = output_dir
        self._split_counts = split_counts

    def expand(self, records):
        written = (
            records
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(self._output_dir))
        )
        _ = (
            records.pipeline
            | "Once" >> beam.Create([None])
            | "FillEmptyShards" >> beam.Map(
                lambda _, c, w, d: _write_missing_shards(c, w, d),
                beam.pvalue.AsSingleton(self._split_counts),
                beam.pvalue.AsList(written),
                self._output_dir,
            )
        )
        return written


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
    """Per-bin mean and standard deviation over every frame of every block."""

    def create_accumulator(self):
        return (0, None, None)

    def add_input(self, acc, blocks: np.ndarray):
        count, total, total_sq = acc
        frames = blocks.reshape(-1, blocks.shape[-1]).astype(np.float64)
        s, sq = frames.sum(axis=0), np.square(frames).sum(axis=0)
        if total is None:
            return (len(frames), s, sq)
        return (count + len(frames), total + s, total_sq + sq)

    def merge_accumulators(self, accumulators):
        count, total, total_sq = 0, None, None
        for c, s, sq in accumulators:
            if s is None:
                continue
            count += c
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
        return (count, total, total_sq)

    def extract_output(self, acc) -> dict[str, Any]:
        count, total, total_sq = acc
        if not count:
            return {"frames": 0}
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        overall_mean = float(total.sum() / (count * len(total)))
        overall_var = float(total_sq.sum() / (count * len(total)) - overall_mean**2)
        return {
            "frames": int(count),
            "mean": [float(x) for x in mean],
            "std": [float(x) for x in np.sqrt(var)],
            "global_mean": overall_mean,
            "global_std": math.sqrt(max(overall_var, 0.0)),
        }


class ComputeStats(beam.PTransform):
    """Written training blocks ([n, frames, bins] arrays) -> feature mean/std (one dict)."""

    def expand(self, train_blocks):
        return train_blocks | "MeanStd" >> beam.CombineGlobally(MeanStdFn())


class CountSplits(beam.PTransform):
    """KeptBlocks -> {"train": {"clips": {...}, "blocks": {...}, ...}, ...} (one dict)."""

    def expand(self, kept):
        def events(c: KeptBlocks):
            key = split_label_key(c.split, c.clip.label)
            yield (key, "clips"), 1
            yield (key, "blocks"), len(c.block_indices)
            yield (key, "audio_seconds"), c.seconds

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
        s: {m: {g: 0 for g in features.GENDER_NAMES} for m in ("clips", "blocks", "speakers", "audio_seconds")}
        for s in features.SPLITS
    }
    for (key, measure), value in items:
        split, gender = key.split("/")
        splits[split][measure][gender] = round(value, 2) if measure == "audio_seconds" else int(value)
    return splits


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


def write_metadata(output_dir: str, static: dict[str, Any], computed: dict[str, Any]) -> str:
    """Writes the metadata file; returns its path."""
    metadata = dict(static)
    metadata.update(computed)
    path = cv.join(output_dir, features.METADATA_FILENAME)
    with FileSystems.create(path) as f:
        f.write(json.dumps(metadata, indent=2, sort_keys=True).encode("utf-8"))
    return path
