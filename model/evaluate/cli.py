"""Evaluates a trained run on a preprocessed split.

    python -m model.evaluate --model_dir=M --data_dir=D [--split=test]

Writes ``M/eval/<split>.json`` (block and clip metrics, by locale, age,
accent, and any attribute such as emotion: ``pipeline.attributes``) and PNG plots (confusion matrix, ROC curves, accuracy by group) next
to it, and prints a summary.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

from pipeline import config_flags, features

flags.DEFINE_string("model_dir", None, "A finished `python -m model.train` run.")
flags.DEFINE_string("data_dir", None, "Output of beam_jobs.preprocess with the model's features.")
flags.DEFINE_enum("split", features.TEST, list(features.SPLITS), "Split to evaluate.")
flags.DEFINE_integer("batch_size", 256, "Blocks per inference batch.")
flags.DEFINE_multi_string("attributes", [], "An attribute TSV (a `path` column and one column per attribute, "
                          "e.g. emotion) to break results down by, besides those found beside the data's sources.")
flags.mark_flags_as_required(["model_dir", "data_dir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    from model.evaluate import evaluate_lib

    try:
        report = evaluate_lib.evaluate(FLAGS.model_dir, FLAGS.data_dir, FLAGS.split, FLAGS.batch_size,
                                       tuple(FLAGS.attributes))
    except (ValueError, FileNotFoundError) as e:  # mismatched features, empty split, not a run, a bad TSV
        sys.exit(f"evaluate: error: {e}")
    print(evaluate_lib.format_summary(report))


def run(argv: list[str] | None = None) -> None:
    """The evaluate command: ``python -m model.evaluate`` and ``voicegender evaluate`` (flags and flagfiles alike)."""
    config_flags.run_command(main, __name__, argv)
