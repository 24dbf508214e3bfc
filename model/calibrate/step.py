"""Calibration as a step of a run: fitted on the run's validation speakers, written into its export.

The predictor's ``p_female`` is the mean block probability over a file's
speech (the default verdict) or over its voiced blocks (``--vad=none``); the
two score differently, so each gets its own calibration. Both are fitted here
on the validation clips' audio, classified exactly as ``predict`` classifies
a file (``model.predict``), with the method chosen by cross-validation over
speakers (``fitting.fit_chosen``, the choice ``benchmarks.calibration``
reports). The result goes into ``voicegender.json`` with a fresh checksum
(``export_format.write_export_info``): nobody edits the JSON by hand.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from model.calibrate import fitting
from model.predict import classifier as classifier_lib
from model.predict import export_format, segments
from model.predict.calibration import identity
from pipeline import config_flags, features, split_clips

# Each verdict's key in voicegender.json and the speech detector predict uses for it.
VERDICTS = {export_format.CALIBRATION_KEY: "silero", export_format.WHOLE_FILE_CALIBRATION_KEY: segments.WHOLE_FILE}
FITTED_ON_KEY = "calibration_fitted_on"  # voicegender.json: what each calibration was fitted on (informational)
RUN_CONFIG = "config.json"  # a training run's settings (model.train.loading.CONFIG_FILENAME)


class CalibrationError(ValueError):
    """The run cannot be calibrated (no export, no validation audio, one gender only): says why in one line."""


@dataclasses.dataclass(frozen=True)
class CalibrateConfig:
    """What ``voicegender calibrate`` needs; its flags are generated from these attributes.

    Attributes:
      model_dir: a finished training run (its ``export/`` is rewritten) or an
        export directory itself.
      data_dir: the preprocessed data whose split is fitted on (default: the
        run's own, from its ``config.json``).
      split: the split the calibration is fitted on; the run never trained on it.
      folds: cross-validation folds (by speaker) that choose the method.
      repeats: fold assignments averaged.
      seed: seeds the folds.
      workers: files classified at once.
    """

    model_dir: str
    data_dir: str = ""
    split: str = dataclasses.field(default=features.VALIDATION,
                                   metadata=config_flags.flag_options(choices=list(features.SPLITS)))
    folds: int = 5
    repeats: int = 10
    seed: int = 0
    workers: int = 2

    def __post_init__(self):
        for name, least in (("folds", 2), ("repeats", 1), ("workers", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"--{name} must be at least {least}, got {getattr(self, name)}")


@dataclasses.dataclass
class CalibrationResult:
    """What was fitted, per verdict key, and where it was written."""

    export_dir: str
    fitted: dict[str, dict]  # key -> fitting.fit_chosen's record, with the calibration
    missing_audio: int  # split clips whose file is not under the data's sources
    failed: dict[str, int]  # files predict could not classify, by reason


def run_data_dir(model_dir: str) -> str:
    """The data directory a training run was trained on (its ``config.json``), or ""."""
    path = os.path.join(model_dir, RUN_CONFIG)
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("data_dir", "")


def scores(model: classifier_lib.Classifier, method: str, paths: list[str], workers: int):
    """Raw (uncalibrated) p_female of each path by ``method``'s verdict; None where a file fails, and the reasons."""
    model.calibration = model.whole_file_calibration = identity()  # fit on the model's own scores
    verdicts = classifier_lib.map_in_order(segments.file_classifier(model, method), paths, workers, 32)
    p, failed = [], {}
    for prediction in verdicts:
        if prediction.error is not None:
            failed[prediction.reason] = failed.get(prediction.reason, 0) + 1
            p.append(None)
        else:
            p.append(prediction.p_female)
    return p, failed


def calibrate(config: CalibrateConfig) -> CalibrationResult:
    """Fits both verdicts' calibration on ``config.split`` and writes them into the export.

    Raises:
      CalibrationError: no export, no data directory, no clip's audio found, or a fit that cannot be made.
    """
    export_dir = export_format.resolve_model_dir(config.model_dir)
    try:
        info, _ = export_format.load_export_info(export_dir)
    except export_format.ModelDirError as e:
        raise CalibrationError(str(e)) from None
    data_dir = config.data_dir or run_data_dir(config.model_dir)
    if not data_dir:
        raise CalibrationError(f"{config.model_dir}: no {RUN_CONFIG} names the data; pass --data_dir")
    try:
        clips, sources = split_clips.read_split_clips(data_dir, config.split)
    except (FileNotFoundError, ValueError) as e:
        raise CalibrationError(f"{data_dir}: {e}") from None
    located = [(clip, split_clips.locate(clip.clip_id, sources)) for clip in clips]
    found = [(clip, path) for clip, path in located if path is not None]
    if not found:
        raise CalibrationError(f"none of the {len(clips)} {config.split} clips of {data_dir} has its audio under "
                               f"the data's sources ({', '.join(sources) or 'none'}); the export stays as it was")
    model = classifier_lib.Classifier(export_dir)
    fitted, failed_all = {}, {}
    for key, method in VERDICTS.items():
        p, failed = scores(model, method, [path for _, path in found], config.workers)
        for reason, n in failed.items():
            failed_all[reason] = max(failed_all.get(reason, 0), n)
        kept = [(clip, q) for (clip, _), q in zip(found, p, strict=True) if q is not None]
        try:
            calibration, record = fitting.fit_chosen(
                np.array([q for _, q in kept]), np.array([c.label for c, _ in kept]),
                np.array([c.speaker_id for c, _ in kept]), config.folds, config.repeats, config.seed)
        except ValueError as e:
            raise CalibrationError(f"{config.split} of {data_dir}: {method} verdicts: {e}") from None
        fitted[key] = {**record, "calibration": calibration.to_dict()}
    info = {key: value for key, value in info.items() if key != export_format.CHECKSUM_KEY}
    for key, record in fitted.items():
        info[key] = record["calibration"]
    info[FITTED_ON_KEY] = {"data_dir": data_dir, "split": config.split,
                           **{key: {k: v for k, v in record.items() if k != "calibration"}
                              for key, record in fitted.items()}}
    export_format.write_export_info(export_dir, info)
    export_format.load_export_info(export_dir)  # what predict will read: checked once more
    return CalibrationResult(export_dir, fitted, len(clips) - len(found), failed_all)


def calibrate_or_explain(export_dir: str, data_dir: str, hint: str = "") -> CalibrationResult | None:
    """Calibrates a fresh export (at the end of ``train`` or ``export``) and prints what was fitted; an export
    that cannot be calibrated is kept uncalibrated, with one ``not calibrated: ...`` line (then ``hint``)."""
    try:
        result = calibrate(CalibrateConfig(model_dir=export_dir, data_dir=data_dir))
    except CalibrationError as e:
        print(f"not calibrated: {e}{hint}", flush=True)
        return None
    print(format_result(result), flush=True)
    return result


def format_result(result: CalibrationResult) -> str:
    """One line per verdict: the method chosen, the clips and speakers, the ECE before and after."""
    lines = []
    for key, record in result.fitted.items():
        verdict = "default verdict" if key == export_format.CALIBRATION_KEY else "--vad=none verdict"
        lines.append(f"calibrated the {verdict}: {record['method']} on {record['clips']} clips of "
                     f"{record['speakers']} speakers, ECE {record['ece_before']:.4f} -> "
                     f"{record['ece_after_in_sample']:.4f} (in sample)")
    if result.missing_audio:
        lines.append(f"{result.missing_audio} clips had no audio under the data's sources and were left out")
    lines.append(f"wrote {os.path.join(result.export_dir, export_format.EXPORT_METADATA)}")
    return "\n".join(lines)
