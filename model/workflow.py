"""A training run end to end, the stages in data-flow order: what ``voicegender train`` runs.

    train (model.train) -> validation summary (model.evaluate) -> export (model.export)
      -> calibration (model.calibrate, through the TensorFlow-free predictor)

Each stage lives in its own package and imports only what is upstream of it;
this module is the one place that strings them together, so a run trained by
``voicegender train`` predicts with calibrated probabilities and no manual step.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from model.calibrate import step as calibrate_step
from model.evaluate import evaluation
from model.export import serving
from model.train import train_lib
from model.train.config import TrainConfig
from pipeline import features

VALIDATION_FILENAME = train_lib.VALIDATION_FILENAME


def validation_summary(result: train_lib.TrainResult, config: TrainConfig) -> dict | None:
    """The final model's block and clip accuracy on validation, written to ``validation.json`` and printed."""
    data = result.data
    if not data.validation_blocks:
        return None
    predictions = evaluation.predict_split(result.final_model, config.data_dir, features.VALIDATION,
                                           data.feature_set, data.normalizer)
    summary = evaluation.accuracy_summary(predictions)
    with tf.io.gfile.GFile(os.path.join(config.model_dir, VALIDATION_FILENAME), "w") as f:
        json.dump(summary, f, indent=2)
    # The user-facing summary goes to stdout (tests and the multi-worker check read it).
    print("validation: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in summary.items()), flush=True)
    return summary


def calibrate_export(config: TrainConfig, export_dir: str) -> calibrate_step.CalibrationResult | None:
    """Calibrates a fresh export on the run's validation speakers; a run that cannot be calibrated says why and
    keeps its (uncalibrated) export: the weights are good either way."""
    return calibrate_step.calibrate_or_explain(
        export_dir, config.data_dir, f" (run `voicegender calibrate --model_dir={config.model_dir}` once it can be)")


def run(config: TrainConfig, flags_text: str = "") -> train_lib.TrainResult:
    """Trains, then on the chief writes the validation summary, the export and its calibration.

    Returns:
      ``train_lib.train``'s result, with ``validation`` and ``export_dir`` filled in on the chief.

    Raises:
      As ``train_lib.train``; ``ValueError`` for non-finite weights (nothing exported).
    """
    result = train_lib.train(config, flags_text)
    if not result.chief:
        return result
    result.validation = validation_summary(result, config)
    if config.export:
        result.export_dir = serving.export_run(result.final_model, result.data.feature_set, result.data.normalizer,
                                               config.model_dir, config.to_dict(), result.validation)
        print(f"exported the serving SavedModel to {result.export_dir}", flush=True)
        if config.calibrate:
            calibrate_export(config, result.export_dir)
    return result
