"""Spill files, shard planning, writing from the spill, and the read-back check against the plan."""

import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import spill
from beam_jobs.balance import KeptBlocks
from beam_jobs.write import (
    MeanStdFn,
    PlanShards,
    ShardCheckError,
    VerifyShards,
    WriteShards,
    WrittenShard,
    check_against_plan,
    read_back,
    shard_count,
)
from pipeline import common_voice as cv
from pipeline import examples, features, tfrecords
from tests.helpers import make_test_pipeline

FS = features.LOG_MEL


def clip(i: int, label: int) -> cv.Clip:
    return cv.Clip(f"en/{i}.mp3", f"/x/en/clips/{i}.mp3", f"s{i}", label, "en", age="twenties")


def spilled_clips(spill_dir: str, n: int, split_of) -> list[KeptBlocks]:
    """n clips of 3 blocks (block b of clip i filled with 10 * i + b), spilled over two files; blocks 0 and 2 kept."""
    kept = []
    writers = [spill.SpillWriter(spill_dir), spill.SpillWriter(spill_dir)]
    for i in range(n):
        blocks = np.stack([np.full(FS.block_shape, 10 * i + b, np.float32) for b in range(3)])
        ref = writers[i % 2].write(blocks)
        # Spilled indices are 0, 3, 6 (a clip's voiced blocks need not be consecutive).
        kept.append(KeptBlocks(split_of(i), clip(i, i % 2), (0, 6), 2.0, ref, (0, 2)))
    for w in writers:
        w.close()
    return kept


def test_spill_writer_and_reader_round_trip(tmp_path):
    d = str(tmp_path / "spill")
    w = spill.SpillWriter(d)
    a = w.write(np.full((2, *FS.block_shape), 1.0, np.float32))
    b = w.write(np.full((3, *FS.block_shape), 2.0, np.float32))
    w.close()
    assert (a.offset, a.count, b.offset, b.count) == (0, 2, 2 * FS.block_nbytes, 3)
    got = [(i, slot, float(block[0, 0])) for i, slot, block in spill.read_blocks([(b, [2, 0]), (a, [1])], FS.block_shape)]
    assert sorted(got) == [(0, 0, 2.0), (0, 2, 2.0), (1, 1, 1.0)]
    with pytest.raises(OSError, match="slot 3 outside"):
        list(spill.read_blocks([(a, [3])], FS.block_shape))
    # A spill file cut short must fail loudly, never drop blocks.
    with open(b.path, "r+b") as f:
        f.truncate(3 * FS.block_nbytes)
    with pytest.raises(OSError, match="truncated spill file"):
        list(spill.read_blocks([(b, [2])], FS.block_shape))
    spill.delete_spill_dir(d)
    assert not os.path.exists(d)
    spill.delete_spill_dir(d)  # a missing one is fine


def test_plan_write_and_verify_every_kept_block_once(tmp_path):
    out, spill_dir = tmp_path / "out", str(tmp_path / "spill")
    kept = spilled_clips(spill_dir, 22, lambda i: "train" if i < 20 else "test")[:-1]  # the last test clip dropped
    record_bytes = FS.block_nbytes + 1024
    with make_test_pipeline() as p:
        entries, counts, planned = p | beam.Create(kept) | PlanShards(0, record_bytes, record_bytes * 10)
        assert_that(counts, equal_to([{"train": 4, "test": 1}]), label="Counts")
        written, stats = entries | WriteShards(str(out), FS, counts)
        assert_that(stats | beam.CombineGlobally(MeanStdFn()) | beam.Map(lambda s: s["frames"]),
                    equal_to([20 * 2 * FS.block_frames]), label="TrainFrames")
        read = written | VerifyShards(planned)
        assert_that(read, equal_to([{"train": 40, "test": 2}]), label="ReadBack")
    names = sorted(os.listdir(out))
    assert names == [features.shard_name("test", 0, 1)] + [features.shard_name("train", i, 4) for i in range(4)]
    ds = tf.data.TFRecordDataset([str(out / n) for n in names], compression_type=features.SHARD_COMPRESSION)
    parsed = [examples.parse_blocks(r, FS) for r in ds]
    got = sorted((x[features.CLIP_ID_KEY].numpy().decode(), int(x[features.BLOCK_INDEX_KEY])) for x in parsed)
    assert got == sorted((k.clip.clip_id, i) for k in kept for i in (0, 6))
    for x in parsed:
        n = int(x[features.CLIP_ID_KEY].numpy().decode().split("/")[1].split(".")[0])
        slot = {0: 0, 6: 2}[int(x[features.BLOCK_INDEX_KEY])]
        assert float(x[features.BLOCK_KEY][0, 0]) == 10 * n + slot  # the right block from the spill
        assert int(x[features.LABEL_KEY]) == n % 2
        assert x[features.AGE_KEY].numpy() == b"twenties"


def test_read_back_refuses_a_shard_that_lost_a_record(tmp_path):
    path = str(tmp_path / features.shard_name("train", 0, 1))
    with open(path, "wb") as f:
        for r in (b"a", b"b"):
            tfrecords.write_record(f, r)
    shard = WrittenShard(("train", 0, 1), path, 2)
    assert read_back(shard, {("train", 0, 1): 2}) == ("train", 2)
    with pytest.raises(ShardCheckError, match=r"train-00000-of-00001.*2 records read back, 3 planned"):
        read_back(shard, {("train", 0, 1): 3})
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 2)
    with pytest.raises(tfrecords.CorruptRecordError, match=r"train-00000-of-00001.tfrecord: truncated record at byte 17"):
        read_back(shard, {("train", 0, 1): 2})


def test_check_against_plan_is_an_error_not_a_warning():
    splits = {s: {"blocks": {"male": 2, "female": 3}} for s in features.SPLITS}
    assert check_against_plan({"train": 5, "validation": 5, "test": 5}, splits) == {
        "train": 5, "validation": 5, "test": 5}
    with pytest.raises(ShardCheckError, match="validation: 4 blocks read back from the shards, 5 planned"):
        check_against_plan({"train": 5, "validation": 4, "test": 5}, splits)


def test_mean_std_never_returns_non_finite_statistics():
    fn = MeanStdFn()
    acc = fn.add_input(fn.create_accumulator(), (2, np.array([1.0, np.nan]), np.array([1.0, 1.0])))
    # No NaN is ever written: the statistics are replaced by a flag that completeness_problems reports.
    assert fn.extract_output(acc) == {"frames": 2, "non_finite": True}
    good = fn.add_input(fn.create_accumulator(), (2, np.array([2.0, 4.0]), np.array([2.0, 8.0])))
    stats = fn.extract_output(good)
    assert stats["mean"] == [1.0, 2.0] and stats["std"] == [0.0, 0.0] and "non_finite" not in stats


def test_shard_count_follows_size():
    assert shard_count(0, 100) == 1
    assert shard_count(250, 100) == 3
    assert shard_count(10**12, 100, max_shards=8) == 8
