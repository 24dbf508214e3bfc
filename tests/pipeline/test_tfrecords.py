"""The TFRecord framing: what tf.data reads, and corrupt files named with their offset."""

import gzip
import io
import os

import pytest
import tensorflow as tf

from pipeline import tfrecords


def framed(records) -> bytes:
    buf = io.BytesIO()
    for r in records:
        tfrecords.write_record(buf, r)
    return buf.getvalue()


def test_framing_reads_back_with_tf_data(tmp_path):
    records = [b"", b"a", os.urandom(1000)]
    path = tmp_path / "x.tfrecord.gz"
    path.write_bytes(gzip.compress(framed(records)))
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")] == records
    assert tfrecords.count_records(io.BytesIO(framed(records))) == 3
    assert tfrecords.count_records(io.BytesIO(b"")) == 0


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-1], "truncated record at byte 35 .record 2: 4 bytes announced, 3 present"),
    (lambda b: b[:5], "truncated record header at byte 0"),
    (lambda b: b[:29] + bytes([b[29] ^ 1]) + b[30:], "bad data checksum at byte 16 .record 1"),
    (lambda b: bytes([b[0] ^ 1]) + b[1:], "bad length checksum at byte 0"),
])
def test_corrupt_files_name_the_file_and_offset(damage, message):
    data = damage(framed([b"", b"abc", b"defg"]))
    with pytest.raises(tfrecords.CorruptRecordError, match=f"shard.tfrecord: {message}"):
        tfrecords.count_records(io.BytesIO(data), "shard.tfrecord")
