"""The fusion's cnn branch started from an export of ours (``--cnn_branch_from``), e.g. the shipped model.

Issue 21's fixed fusion pairs the shipped ``cnn`` with ina's CNN; training the
fusion's ina branch beside a cnn trained from scratch lets the cnn learn to
outvote ina where calm data disagree with it (WORKSPACE, "Fine-tuning the
fusion"). Starting the branch from a trained export, frozen or not, trains the
form that kept ina's gain. An export's normalisation constants live inside
its graph, so the data's statistics are checked against the export's
``training_data_metadata.json`` instead: a branch fed other statistics than it
was trained on would be silently wrong.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from model.train import models
from pipeline import features
from pipeline.metadata import Metadata, Normalizer

MEAN_TOLERANCE = 0.01  # log units
STD_TOLERANCE = 0.01  # relative


def cnn_from_export(export_dir: str) -> keras.Model:
    """The ``cnn`` on log_mel of an export of ours (at the global dtype policy), its weights read by name.

    The export's model must hold exactly a ``cnn``'s weights: a ``cnn_envelope`` export has them all and a
    lifter besides, and would load as a ``cnn`` without its lifter.

    Raises:
      ValueError: not a SavedModel of ours, or its model is no ``cnn`` on log_mel (naming a weight that differs).
    """
    try:
        restored = {v.name: v for v in tf.saved_model.load(export_dir).model.variables}
    except (OSError, ValueError, AttributeError, tf.errors.OpError) as e:
        raise ValueError(f"{export_dir}: not an export of ours ({str(e).splitlines()[0]})") from None
    model = models.cnn(features.LOG_MEL.block_shape)
    missing = [w.name for w in model.weights if w.name not in restored or restored[w.name].shape != w.shape]
    extra = sorted(set(restored) - {w.name for w in model.weights})
    if missing:
        raise ValueError(f"{export_dir}: not an export of a `cnn` on log_mel (no {', '.join(missing[:3])})")
    if extra:
        raise ValueError(f"{export_dir}: not an export of a `cnn` on log_mel (but has {', '.join(extra[:3])})")
    for weight in model.weights:
        weight.assign(restored[weight.name])
    return model


def check_statistics(export_dir: str, normalizer: Normalizer) -> None:
    """Refuses data whose log_mel statistics are not those the export's cnn was trained with.

    Raises:
      ValueError: no ``training_data_metadata.json`` beside the export, or a bin's mean or std differs by more
        than ``MEAN_TOLERANCE`` / ``STD_TOLERANCE`` (naming the largest difference).
    """
    path = os.path.join(export_dir, features.TRAINING_METADATA_FILENAME)
    if not os.path.isfile(path):
        raise ValueError(f"{export_dir} has no {features.TRAINING_METADATA_FILENAME} (the metadata.json of the data its cnn was "
                         "trained on), so its statistics cannot be checked; copy it there")
    with open(path) as f:
        trained = Normalizer.from_metadata(Metadata.from_dict(json.load(f), path))
    bins = features.LOG_MEL.num_bins
    if len(trained.mean) < bins or len(normalizer.mean) < bins:
        raise ValueError(f"{path}: not log_mel statistics ({len(trained.mean)} bins)")
    mean_diff = float(np.max(np.abs(trained.mean[:bins] - normalizer.mean[:bins])))
    std_diff = float(np.max(np.abs(normalizer.std[:bins] / trained.std[:bins] - 1.0)))
    if mean_diff > MEAN_TOLERANCE or std_diff > STD_TOLERANCE:
        raise ValueError(f"--cnn_branch_from={export_dir}: the data's log_mel statistics are not its cnn's "
                         f"(mean differs by up to {mean_diff:.3g}, std by up to {std_diff:.1%}); write the data from "
                         f"the corpora and flags of its {features.TRAINING_METADATA_FILENAME}")
