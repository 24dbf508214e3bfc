"""Writes a finished run's export again: the serving SavedModel and its LiteRT twin, then its calibration.

    python -m model.export --model_dir=runs/cnn
    voicegender export --model_dir=runs/cnn --nocalibrate

``model.train`` exports at the end of every run; this rebuilds ``export/``
from the run's ``final.weights.h5`` and ``config.json`` (for instance after a
run with ``--noexport``, or to refresh an export made by an older version),
with the normalization statistics of the run's data. Status 1 when the run
cannot be exported (one line says why).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from absl import flags

from model.train.train_lib import VALIDATION_FILENAME
from pipeline import config_flags


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``voicegender export`` needs; its flags are generated from these attributes.

    Attributes:
      model_dir: a finished ``model.train`` run (``config.json`` + ``final.weights.h5``).
      data_dir: the data whose normalization the run trained with (default: the run's own).
      calibrate: fit the calibration on the data's validation speakers afterwards (``model.calibrate``).
    """

    model_dir: str
    data_dir: str = ""
    calibrate: bool = True


config_flags.define_flags(ExportConfig)
flags.mark_flags_as_required(["model_dir"])
FLAGS = flags.FLAGS


def export_run(config: ExportConfig) -> str:
    """Rebuilds ``<model_dir>/export`` (and calibrates it); returns the export directory.

    Raises:
      FileNotFoundError, ValueError: not a finished run, data that does not match it, non-finite weights.
    """
    from model.calibrate import step
    from model.export import serving
    from model.train import loading
    from pipeline.metadata import Normalizer, check_compatible, read_metadata

    model, feature_set, run_config = loading.load_block_model(config.model_dir)
    data_dir = config.data_dir or run_config.get("data_dir", "")
    metadata = read_metadata(data_dir)
    check_compatible(metadata, feature_set, data_dir)
    validation_path = os.path.join(config.model_dir, VALIDATION_FILENAME)
    validation = None
    if os.path.isfile(validation_path):
        with open(validation_path) as f:
            validation = json.load(f)
    export_dir = serving.export_run(model, feature_set, Normalizer.from_metadata(metadata), config.model_dir,
                                    run_config, validation)
    print(f"exported the serving SavedModel to {export_dir}", flush=True)
    if config.calibrate:
        step.calibrate_or_explain(export_dir, data_dir)
    return export_dir


def main(argv):
    config_flags.begin_command(argv)
    try:
        export_run(config_flags.from_flags(ExportConfig, FLAGS))
    except (ValueError, FileNotFoundError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 1
    return 0


def run(argv: list[str] | None = None) -> None:
    """The export command: ``python -m model.export`` and ``voicegender export``."""
    config_flags.run_command(main, __name__, argv)
