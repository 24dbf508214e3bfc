"""Evaluates a trained run on a preprocessed split.

    python -m model.evaluate --model_dir=M --data_dir=D [--split=test]

Writes ``M/eval/<split>.json`` (block and clip metrics, by locale, age,
accent, and any attribute such as emotion: ``pipeline.attributes``) and PNG plots (confusion matrix, ROC curves, accuracy by group) next
to it, and prints a summary.
"""

from __future__ import annotations

import sys

from absl import flags

from model.evaluate.config import EvaluateConfig
from pipeline import config_flags

# Every EvaluateConfig field is a flag of the same name (attributes: the repeatable --attributes).
config_flags.define_flags(EvaluateConfig)
flags.mark_flags_as_required(["model_dir", "data_dir"])
FLAGS = flags.FLAGS


def main(argv):
    config_flags.begin_command(argv)
    from model.evaluate import evaluate_lib

    try:
        config = config_flags.from_flags(EvaluateConfig, FLAGS)
        report = evaluate_lib.evaluate(config.model_dir, config.data_dir, config.split, config.batch_size,
                                       config.attributes)
    except (ValueError, FileNotFoundError) as e:  # mismatched features, empty split, not a run, a bad TSV
        print(f"evaluate: error: {e}", file=sys.stderr)
        sys.exit(1)
    print(evaluate_lib.format_summary(report))


def run(argv: list[str] | None = None) -> None:
    """The evaluate command: ``python -m model.evaluate`` and ``voicegender evaluate`` (flags and flagfiles alike)."""
    config_flags.run_command(main, __name__, argv)
