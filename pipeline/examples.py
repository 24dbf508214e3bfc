"""tf.train.Example encoding and parsing of spectrogram blocks.

Writers (the Beam job) and readers (tf.data, evaluation) both go through this
module, which takes every key, dtype and shape from ``pipeline.features``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipeline import features

_DTYPES = {"bytes": tf.string, "int64": tf.int64}


def _feature(field: features.RecordField, value: bytes | int) -> tf.train.Feature:
    if field.dtype == "bytes":
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


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
    example = tf.train.Example(features=tf.train.Features(feature={
        field.key: _feature(field, value) for field, value in zip(features.RECORD_FIELDS, values, strict=True)
    }))
    # Deterministic: map fields otherwise serialize in a per-process hash
    # order, and the same seed must give byte-identical shards on any runner.
    return example.SerializeToString(deterministic=True)


def feature_spec() -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec of a block example, derived from ``features.RECORD_FIELDS``."""
    return {
        field.key: tf.io.FixedLenFeature([], _DTYPES[field.dtype], default_value=field.default)
        for field in features.RECORD_FIELDS
    }


def parse_blocks(serialized: tf.Tensor, feature_set: features.FeatureSet) -> dict[str, tf.Tensor]:
    """Parses a batch (or one) serialized block example.

    Args:
      serialized: string tensor of shape [] or [batch].
      feature_set: the feature set the data was written with.

    Returns:
      The spec's keys; ``BLOCK_KEY`` decoded to float32 of shape
      ``[..., frames, bins]``.
    """
    parsed = tf.io.parse_example(serialized, feature_spec())
    block = tf.io.decode_raw(parsed[features.BLOCK_KEY], tf.float32, little_endian=True)
    leading = tf.shape(parsed[features.LABEL_KEY])
    parsed[features.BLOCK_KEY] = tf.reshape(
        block, tf.concat([leading, list(feature_set.block_shape)], axis=0)
    )
    return parsed
