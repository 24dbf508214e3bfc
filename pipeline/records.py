"""A block's record, the ``tf.train.Example`` of ``features.RECORD_FIELDS``, encoded without TensorFlow.

The Beam job's workers write the shards with this module and ``pipeline.tfrecords`` (the framing), so
they never import TensorFlow; readers parse the records with ``pipeline.examples`` (tf.io). The bytes are
the protocol-buffer wire format of ``tensorflow/core/example/example.proto``: each map entry exactly as
protobuf serialises it, the entries in one fixed order (ascending key bytes, protobuf C++'s deterministic
order; Python's upb backend puts ``block_index`` before ``block``, and parsers accept any order), which
``tests/pipeline/test_records.py`` checks byte for byte, so a seed gives byte-identical shards on any runner.
"""

from __future__ import annotations

import operator

import numpy as np

from pipeline import features

# Wire-format tags: (field number << 3) | wire type 2 (length-delimited).
_FIELD_1 = b"\x0a"  # Example.features, Features.feature (map entry), the entry's key, BytesList/Int64List.value
_FIELD_2 = b"\x12"  # a map entry's value
_FIELD_3 = b"\x1a"  # Feature.int64_list (Feature.bytes_list is _FIELD_1)


def _varint(value: int) -> bytes:
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{value} is outside int64")
    value &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negatives (ten bytes)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _feature(field: features.RecordField, value: bytes | int) -> bytes:
    """A ``Feature`` holding one value: a ``bytes_list`` or a packed ``int64_list``."""
    if field.dtype == "bytes":
        return _delimited(_FIELD_1, _delimited(_FIELD_1, value))
    # operator.index: numpy integers are ints, a float is refused (int() would truncate it).
    return _delimited(_FIELD_3, _delimited(_FIELD_1, _varint(operator.index(value))))


# The fields in the order their entries are written, each with its key's encoded header.
_ORDERED_FIELDS = tuple((field, _delimited(_FIELD_1, field.key.encode("utf-8")))
                        for field in sorted(features.RECORD_FIELDS, key=lambda f: f.key.encode("utf-8")))


def encode_example(values: dict[str, bytes | int]) -> bytes:
    """Serialises one value per key of ``features.RECORD_FIELDS`` (every key required) as an ``Example``."""
    entries = b"".join(_delimited(_FIELD_1, key + _delimited(_FIELD_2, _feature(field, values[field.key])))
                       for field, key in _ORDERED_FIELDS)
    return _delimited(_FIELD_1, entries)


def encode_block(
    block: np.ndarray,
    label: int,
    clip_id: str,
    speaker_id: str,
    block_index: int,
    age: str = "",
    accent: str = "",
    augmentation: str = "",
) -> bytes:
    """Serializes one block as a ``tf.train.Example`` with ``features.RECORD_FIELDS``.

    The block is stored as raw little-endian float32 bytes rather than a
    ``float_list``: parsing 6k-51k floats from a proto list is several times
    slower than ``tf.io.decode_raw`` (see WORKSPACE.md).

    Returns:
      The serialized example.
    """
    raw = np.ascontiguousarray(block, dtype="<f4").tobytes()
    # The arguments in RECORD_FIELDS' order.
    values = (raw, label, clip_id.encode("utf-8"), speaker_id.encode("utf-8"), block_index, age.encode("utf-8"),
              accent.encode("utf-8"), augmentation.encode("utf-8"))
    return encode_example({field.key: value for field, value in zip(features.RECORD_FIELDS, values, strict=True)})
