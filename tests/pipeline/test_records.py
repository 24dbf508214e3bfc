"""pipeline.records: each entry of the TF-free writer's record is protobuf's own bytes, the message TensorFlow's.

(The entry order is the writer's own, ascending key bytes; the upb backend's deterministic order differs, so
these records parse the same as the old writer's but are not byte-equal to them.)"""

import numpy as np
import pytest
import tensorflow as tf

from pipeline import examples, features, records


def tf_feature(field, value) -> tf.train.Feature:
    if field.dtype == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def tf_example(values: dict) -> tf.train.Example:
    """The same record built with tf.train.Example, as the writer did before it dropped TensorFlow."""
    return tf.train.Example(features=tf.train.Features(feature={
        field.key: tf_feature(field, values[field.key]) for field in features.RECORD_FIELDS}))


def tf_entries(values: dict) -> bytes:
    """Protobuf's own bytes of each map entry (a one-entry ``Features`` each), in ascending key order."""
    return b"".join(
        tf.train.Features(feature={field.key: tf_feature(field, values[field.key])}).SerializeToString()
        for field in sorted(features.RECORD_FIELDS, key=lambda f: f.key.encode()))


@pytest.mark.parametrize("label, index, text", [
    (0, 0, ""),  # zero and empty values are still written (a one-element list each)
    (1, 127, "ascii"),
    (1, 128, "zürich, 日本語"),  # a two-byte varint; multi-byte UTF-8
    (-1, 2**40, "x" * 300),  # a negative int64 (ten-byte varint), a large index, a two-byte length
])
def test_bytes_equal_tensorflows(label, index, text):
    rng = np.random.default_rng(index % 97)
    for shape in [features.LOG_MEL.block_shape, features.STFT_SEED.block_shape, (1, 1)]:
        block = rng.standard_normal(shape).astype(np.float32)
        ours = records.encode_block(block, label, f"en/{text}.mp3", text, index, age=text, accent="", augmentation=text)
        values = dict(zip([f.key for f in features.RECORD_FIELDS], [
            block.astype("<f4").tobytes(), label, f"en/{text}.mp3".encode(), text.encode(), index, text.encode(),
            b"", text.encode()], strict=True))
        example = tf_example(values)
        # Byte for byte: protobuf's entries after the Example's one header (field 1's tag, the length)...
        body = tf_entries(values)
        assert ours == b"\x0a" + records._varint(len(body)) + body and len(ours) == example.ByteSize()
        # ... and the same message.
        assert tf.train.Example.FromString(ours) == example


def test_parses_back_with_the_readers_spec():
    block = np.arange(np.prod(features.LOG_MEL.block_shape), dtype=np.float32).reshape(features.LOG_MEL.block_shape)
    record = records.encode_block(block, 1, "de/a.mp3", "spk", 3, age="thirties", accent="de")
    parsed = examples.parse_blocks(tf.constant(record), features.LOG_MEL)
    np.testing.assert_array_equal(parsed[features.BLOCK_KEY].numpy(), block)
    assert (parsed[features.LABEL_KEY].numpy(), parsed[features.BLOCK_INDEX_KEY].numpy()) == (1, 3)
    assert parsed[features.ACCENT_KEY].numpy() == b"de"


def test_values_outside_int64_and_floats_are_refused():
    block = np.zeros((1, 1), np.float32)
    assert records.encode_block(block, np.int64(1), "c", "s", np.int32(2))  # numpy integers are integers
    for bad in (2**63, -(2**63) - 1, 1.5):
        with pytest.raises((ValueError, TypeError)):
            records.encode_block(block, 0, "c", "s", bad)


def test_every_record_field_is_required():
    values = {field.key: (b"" if field.dtype == "bytes" else 0) for field in features.RECORD_FIELDS}
    records.encode_example(values)
    del values[features.LABEL_KEY]
    with pytest.raises(KeyError):
        records.encode_example(values)
