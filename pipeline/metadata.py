"""Reading a preprocessed data directory's ``metadata.json`` and checking it.

The Beam job writes the metadata; training, evaluation and export read it
through here, so a model is never fed features it was not configured for.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from pipeline import features


class DataMismatchError(ValueError):
    """The data directory was written with other features or another format."""


@dataclasses.dataclass(frozen=True)
class SplitCounts:
    """One split's counts by gender name (``features.GENDER_NAMES``), as the job wrote them."""

    clips: Mapping[str, int]
    blocks: Mapping[str, int]
    speakers: Mapping[str, int]
    audio_seconds: Mapping[str, float]

    @property
    def total_blocks(self) -> int:
        return int(sum(self.blocks.values()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitCounts:
        return cls(**{f.name: dict(d.get(f.name, {})) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class Metadata:
    """What a data directory's ``metadata.json`` says, typed (written by ``beam_jobs.write``).

    Attributes:
      format_version: the records' format (``features.FORMAT_VERSION`` when current).
      feature_set_params: the feature parameters as stored (``FeatureSet.to_dict``);
        ``feature_set`` parses them (after the version check: another version may
        store other parameters).
      splits: per split, the counts by gender.
      normalization: the training split's ``mean``/``std`` per bin (and global
        figures), or None when the job wrote none.
      sources: the job's ``--cv_dir`` inputs.
      raw: the whole JSON, for reports (funnel, rejections, shards, flags).
    """

    format_version: int | None
    feature_set_params: Mapping[str, Any]
    splits: Mapping[str, SplitCounts]
    normalization: Mapping[str, Any] | None
    sources: tuple[str, ...]
    raw: Mapping[str, Any]

    @property
    def feature_set(self) -> features.FeatureSet:
        return features.FeatureSet.from_dict(self.feature_set_params)

    def blocks(self, split: str) -> int:
        """Blocks written for ``split`` (all genders); 0 for a split the job did not write."""
        counts = self.splits.get(split)
        return counts.total_blocks if counts else 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str = "metadata.json") -> Metadata:
        """Raises ValueError naming ``path`` when a field readers need is missing."""
        if "feature_set" not in d or "splits" not in d:
            raise ValueError(f"{path}: not a voicegender metadata file (no feature_set or splits)")
        stats = d.get("normalization") or {}
        return cls(
            format_version=d.get("format_version"),
            feature_set_params=dict(d["feature_set"]),
            splits={split: SplitCounts.from_dict(counts) for split, counts in d["splits"].items()},
            normalization=stats if "mean" in stats and "std" in stats else None,
            sources=tuple(d.get("sources", ())),
            raw=d,
        )


def read_metadata(data_dir: str) -> Metadata:
    """Loads ``<data_dir>/metadata.json`` (local or ``gs://``).

    Raises:
      FileNotFoundError: when the directory has no metadata (not a job output).
      ValueError: the file is not JSON or lacks the fields readers need.
    """
    path = os.path.join(data_dir, features.METADATA_FILENAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path}: no {features.METADATA_FILENAME}; is {data_dir!r} an output of "
            "`python -m beam_jobs.preprocess`?"
        )
    with tf.io.gfile.GFile(path) as f:
        try:
            return Metadata.from_dict(json.load(f), path)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not JSON ({e})") from None


def check_compatible(metadata: Metadata, expected: features.FeatureSet, data_dir: str = "") -> features.FeatureSet:
    """Refuses data written with another format version or other features.

    Args:
      metadata: the data's metadata.
      expected: the feature set the model is configured for.
      data_dir: named in the error message.

    Returns:
      The data's feature set (equal to ``expected``).

    Raises:
      DataMismatchError: naming every parameter that differs.
    """
    where = data_dir or "data"
    version = metadata.format_version
    if version != features.FORMAT_VERSION:
        raise DataMismatchError(
            f"{where}: format_version {version} but this code reads {features.FORMAT_VERSION}; "
            "re-run beam_jobs.preprocess"
        )
    actual = metadata.feature_set
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


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Per-bin standardization with the training split's statistics.

    The same constants normalize the tf.data input and the exported model's
    in-graph features, so training and serving agree.
    """

    mean: np.ndarray  # float32 [num_bins]
    std: np.ndarray  # float32 [num_bins]

    @classmethod
    def from_metadata(cls, metadata: Metadata) -> Normalizer:
        """The training statistics of ``metadata``.

        Raises:
          ValueError: the metadata holds none (the job writes them with every training block).
        """
        stats = metadata.normalization
        if stats is None:
            raise ValueError("the data's metadata has no normalization statistics (no training blocks were "
                             "written): re-run beam_jobs.preprocess")
        # A constant bin (e.g. an empty mel band) would divide by zero.
        mean, std = np.asarray(stats["mean"], np.float32), np.maximum(np.asarray(stats["std"], np.float32), 1e-3)
        kept = metadata.feature_set.normalized_bins
        mean[kept:], std[kept:] = 0.0, 1.0  # bins whose model standardises them itself
        return cls(mean, std)

    def __call__(self, blocks: tf.Tensor) -> tf.Tensor:
        """Normalizes float32 [..., num_bins]."""
        return (blocks - tf.constant(self.mean)) / tf.constant(self.std)
