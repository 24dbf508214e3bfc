"""Reading a preprocessed data directory's ``metadata.json`` and checking it.

The Beam job writes the metadata; training, evaluation and export read it
through here, so a model is never fed features it was not configured for.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline import features


class DataMismatchError(ValueError):
    """The data directory was written with other features or another format."""


def read_metadata(data_dir: str) -> dict[str, Any]:
    """Loads ``<data_dir>/metadata.json`` (local or ``gs://``).

    Raises:
      FileNotFoundError: when the directory has no metadata (not a job output).
    """
    path = os.path.join(data_dir, features.METADATA_FILENAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path}: no {features.METADATA_FILENAME}; is {data_dir!r} an output of "
            "`python -m beam_jobs.preprocess`?"
        )
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def check_compatible(metadata: dict[str, Any], expected: features.FeatureSet, data_dir: str = "") -> features.FeatureSet:
    """Refuses data written with another format version or other features.

    Args:
      metadata: the parsed ``metadata.json``.
      expected: the feature set the model is configured for.
      data_dir: named in the error message.

    Returns:
      The data's feature set (equal to ``expected``).

    Raises:
      DataMismatchError: naming every parameter that differs.
    """
    where = data_dir or "data"
    version = metadata.get("format_version")
    if version != features.FORMAT_VERSION:
        raise DataMismatchError(
            f"{where}: format_version {version} but this code reads {features.FORMAT_VERSION}; "
            "re-run beam_jobs.preprocess"
        )
    actual = features.FeatureSet.from_dict(metadata["feature_set"])
    diffs = [
        f"{f.name}: data {getattr(actual, f.name)!r}, model {getattr(expected, f.name)!r}"
        for f in dataclasses.fields(features.FeatureSet)
        if getattr(actual, f.name) != getattr(expected, f.name)
    ]
    if diffs:
        raise DataMismatchError(
            f"{where}: features differ from what the model is configured for "
            f"(--features={expected.name}): " + "; ".join(diffs)
        )
    return actual


def split_blocks(metadata: dict[str, Any], split: str) -> int:
    """Blocks written for ``split`` (all genders)."""
    return int(sum(metadata["splits"].get(split, {}).get("blocks", {}).values()))


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Per-bin standardization with the training split's statistics.

    The same constants normalize the tf.data input and the exported model's
    in-graph features, so training and serving agree.
    """

    mean: np.ndarray  # float32 [num_bins]
    std: np.ndarray  # float32 [num_bins]

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Normalizer:
        stats = metadata["normalization"]
        std = np.asarray(stats["std"], np.float32)
        # A constant bin (e.g. an empty mel band) would divide by zero.
        return cls(np.asarray(stats["mean"], np.float32), np.maximum(std, 1e-3))

    def __call__(self, blocks: tf.Tensor) -> tf.Tensor:
        """Normalizes float32 [..., num_bins]."""
        return (blocks - tf.constant(self.mean)) / tf.constant(self.std)
