"""A trained run's Keras block classifier: rebuilt from its ``model_dir``, and checked finite before anything is written."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from model.train import models
from pipeline import features
from pipeline.metadata import Normalizer

# Written by model.train.train_lib (the names live here so readers need not import it).
CONFIG_FILENAME = "config.json"
WEIGHTS_FILENAME = "final.weights.h5"


def load_block_model(model_dir: str) -> tuple[keras.Model, features.FeatureSet, dict]:
    """Rebuilds the trained float32 model from ``config.json`` and ``final.weights.h5``.

    Returns:
      The model, the feature set it expects, and the run's config dict.

    Raises:
      FileNotFoundError: naming the missing file (not a finished training run).
      ValueError: naming the corrupt file and what is wrong with it.
    """
    paths = {name: os.path.join(model_dir, name) for name in (CONFIG_FILENAME, WEIGHTS_FILENAME)}
    for path in paths.values():
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{path}: missing; is {model_dir!r} a finished `python -m model.train` run?")
    try:
        with tf.io.gfile.GFile(paths[CONFIG_FILENAME]) as f:
            config = json.load(f)
        feature_set = features.get_feature_set(config["features"])
        model = models.build_model(config["model"], feature_set.block_shape, config.get("ina_wheel", ""),
                                   config.get("ina_trainable_layers", 0))
    except (ValueError, KeyError, TypeError) as e:  # bad JSON, unknown feature set or model
        raise ValueError(f"{paths[CONFIG_FILENAME]}: corrupt ({type(e).__name__}: {e})") from None
    try:
        model.load_weights(paths[WEIGHTS_FILENAME])
    except Exception as e:  # noqa: BLE001 (h5py and Keras raise OSError, ValueError, KeyError, ...)
        first_line = (str(e).splitlines() or [""])[0][:200]
        raise ValueError(f"{paths[WEIGHTS_FILENAME]}: cannot load the weights ({type(e).__name__}: {first_line})"
                         ) from None
    return model, feature_set, config


def check_finite(model: keras.Model, normalizer: Normalizer | None = None) -> None:
    """Refuses a model with a NaN or inf weight, or non-finite normalization statistics.

    Raises:
      ValueError: naming every non-finite variable (layer/variable) or statistic.
    """
    bad = [f"{variable.name} ({int(np.sum(~np.isfinite(value)))} of {value.size} values)"
           for variable, value in zip(model.weights, model.get_weights(), strict=True)
           if not np.all(np.isfinite(value))]
    if normalizer is not None:
        bad += [f"normalization {name}" for name, value in (("mean", normalizer.mean), ("std", normalizer.std))
                if not np.all(np.isfinite(value))]
    if bad:
        raise ValueError("refusing to export a model with non-finite values (NaN or inf) in: " + ", ".join(bad))
