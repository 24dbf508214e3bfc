"""tf.train.Example parsing of spectrogram blocks (the readers: tf.data, evaluation).

The writer is ``pipeline.records.encode_block`` (no TensorFlow, for the Beam job's workers); both take
every key, dtype and shape from ``pipeline.features``.
"""

from __future__ import annotations

import tensorflow as tf

from pipeline import features

_DTYPES = {"bytes": tf.string, "int64": tf.int64}


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
