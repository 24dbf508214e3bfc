"""The export's file format: names, the checksum that binds ``model.tflite`` to ``voicegender.json``, and its check.

One owner for what an export is, TensorFlow-free: the predictor reads exports
with it, ``model.export`` writes them with it, and ``model.calibrate`` rewrites
the calibration (and so the checksum) with it.
"""

from __future__ import annotations

import hashlib
import json
import os

from pipeline import features

EXPORT_DIRNAME = "export"  # <model_dir>/export of a training run
EXPORT_METADATA = "voicegender.json"  # features, labels, threshold
LITERT_FILENAME = "model.tflite"  # the LiteRT model (see model.export.serving.export_litert)
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained")
CHECKSUM_KEY = "checksum"  # voicegender.json: sha256 of model.tflite and the settings it depends on
# voicegender.json: model.predict.calibration.Calibration.to_dict(), when fitted. Fitted on predict's default verdicts
# (over the speech Silero finds); the whole-file verdicts (--vad=none) average other blocks and score otherwise
# (benchmarks.calibration: T = 1.0 vs 0.59), so they have their own, used when present.
CALIBRATION_KEY = "calibration"
WHOLE_FILE_CALIBRATION_KEY = "calibration_whole_file"
CALIBRATION_KEYS = (CALIBRATION_KEY, WHOLE_FILE_CALIBRATION_KEY)

class ModelDirError(ValueError):
    """A model directory that cannot be used: missing, corrupt or inconsistent files."""


def export_checksum(litert_bytes: bytes, info: dict) -> str:
    """Binds ``model.tflite`` to the settings in ``voicegender.json`` that change its answers.

    A feature set or threshold edited by hand, or files mixed from two exports,
    would otherwise change every answer silently (a 48 kHz rate beside a
    16 kHz model still runs).
    """
    settings = {key: info.get(key) for key in ("feature_set", "labels", "threshold")}
    for key in CALIBRATION_KEYS:  # only when present, so exports written before calibration keep their checksum
        if key in info:
            settings[key] = info[key]
    digest = hashlib.sha256(litert_bytes)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def write_export_info(export_dir: str, info: dict) -> dict:
    """Writes ``voicegender.json`` beside ``model.tflite`` with a fresh checksum; returns the info written.

    Every writer of an export (``model.export``, ``model.calibrate``) goes
    through here, so nobody edits the JSON or recomputes the checksum by hand.
    """
    with open(os.path.join(export_dir, LITERT_FILENAME), "rb") as f:
        info = {**info, CHECKSUM_KEY: export_checksum(f.read(), info)}
    path = os.path.join(export_dir, EXPORT_METADATA)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, allow_nan=False)
    os.replace(path + ".tmp", path)  # atomic: a crash never leaves a half-written export
    return info


def load_export_info(model_dir: str) -> tuple[dict, str]:
    """Reads and checks ``voicegender.json`` against ``model.tflite``.

    Returns:
      (the export's metadata, the LiteRT model's path).

    Raises:
      ModelDirError: a missing file, JSON that does not parse or lacks the
        feature set, or a checksum that does not match the model.
    """
    info_path, litert_path = (os.path.join(model_dir, name) for name in (EXPORT_METADATA, LITERT_FILENAME))
    for path in (info_path, litert_path):
        if not os.path.isfile(path):
            raise ModelDirError(f"{path}: missing; --model_dir must be an export/ of model.train "
                                "(with model.tflite) or the pretrained model directory")
    try:
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
        features.FeatureSet.from_dict(info["feature_set"])
    except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelDirError(f"{info_path}: corrupt ({type(e).__name__}: {e})") from None
    with open(litert_path, "rb") as f:
        expected = export_checksum(f.read(), info)
    if info.get(CHECKSUM_KEY) != expected:
        found = "no checksum" if CHECKSUM_KEY not in info else "a different checksum"
        raise ModelDirError(f"{info_path}: does not match {LITERT_FILENAME} ({found}); its feature set or "
                            "threshold was edited, or the files come from two exports: re-export the model")
    return info, litert_path


def resolve_model_dir(model_dir: str | None) -> str | None:
    """Accepts a training run's directory as well as its ``export/``."""
    if model_dir and not os.path.exists(os.path.join(model_dir, LITERT_FILENAME)):
        candidate = os.path.join(model_dir, EXPORT_DIRNAME)
        if os.path.exists(os.path.join(candidate, LITERT_FILENAME)):
            return candidate
    return model_dir
