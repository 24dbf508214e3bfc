"""Fits a run's calibration on its validation speakers and writes it, with the checksum, into its export.

    python -m model.calibrate --model_dir=runs/cnn
    voicegender calibrate --model_dir=model/pretrained --data_dir=/data/vg/logmel

Each validation clip's audio (found under the data's ``--cv_dir`` sources) is
classified as ``predict`` classifies a file, once per verdict (over speech,
and over the whole file for ``--vad=none``); the method (temperature, Platt,
isotonic or none) is chosen by cross-validation over speakers. ``model.train``
runs this at the end of every run unless ``--nocalibrate``. Status 1 when the
run cannot be calibrated (one line says why), 2 for a wrong command.
"""

from __future__ import annotations

import sys

from absl import app, flags

from model.calibrate import step
from pipeline import config_flags

config_flags.define_flags(step.CalibrateConfig)
flags.mark_flags_as_required(["model_dir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        config = config_flags.from_flags(step.CalibrateConfig, FLAGS)
    except ValueError as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 2
    try:
        result = step.calibrate(config)
    except step.CalibrationError as e:
        print(f"calibrate: error: {e}", file=sys.stderr)
        return 1
    print(step.format_result(result))
    return 0


def run(argv: list[str] | None = None) -> None:
    """The calibrate command: ``python -m model.calibrate`` and ``voicegender calibrate``."""
    config_flags.run_command(main, __name__, argv)
