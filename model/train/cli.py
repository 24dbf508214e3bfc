"""Trains a gender classifier on preprocessed TFRecords.

    python -m model.train --flagfile=configs/local.flags
    python -m model.train --data_dir=D --model_dir=M --model=cnn --epochs=20

A flagfile may include another (``--flagfile=configs/base.flags`` inside it);
later flags override earlier ones. Run it again with the same flags after an
interruption and it resumes from its last checkpoint. At the end the run is
summarised on validation, exported and calibrated (``model.workflow``).

Every flag is a ``model.train.config.TrainConfig`` field (the augmentation's fields
flattened: ``--gain_db``, ``--noaugment``), derived by
``pipeline.config_flags`` with the field's docstring as its help.
"""

from __future__ import annotations

import sys

from absl import flags

from model.train import config as config_lib
from pipeline import config_flags

config_flags.define_flags(config_lib.TrainConfig)
flags.mark_flags_as_required(["data_dir", "model_dir"])

FLAGS = flags.FLAGS


def config_from_flags(flag_values: flags.FlagValues = FLAGS) -> config_lib.TrainConfig:
    """Reads the parsed flags, once, into the typed config."""
    return config_flags.from_flags(config_lib.TrainConfig, flag_values)


def main(argv):
    config_flags.begin_command(argv)
    from model import workflow  # the command runs the whole run: train, validation summary, export, calibration

    own_flags = FLAGS.get_key_flags_for_module(sys.argv[0]) or FLAGS.get_key_flags_for_module(__name__)
    try:
        config = config_from_flags()
        workflow.run(config, flags_text="".join(f.serialize() + "\n" for f in own_flags))
    except (ValueError, FileNotFoundError) as e:  # mismatched features, missing data, bad settings
        print(f"train: error: {e}", file=sys.stderr)
        sys.exit(1)


def run(argv: list[str] | None = None) -> None:
    """The train command: ``python -m model.train`` and ``voicegender train`` (flags and flagfiles alike)."""
    config_flags.run_command(main, __name__, argv)
