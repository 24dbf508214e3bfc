"""Classifies audio files as male or female voices.

    python -m model.predict me.wav other.mp3
    python -m model.predict --format=jsonl --file_list=clips.txt > results.jsonl
    python -m model.predict --model_dir=runs/cnn clip.flac

Any length, any sample rate, mono or stereo, any format libsndfile reads (MP3,
WAV, FLAC, OGG). Without ``--model_dir`` the shipped pretrained model is used.
Every input gets one result, in input order; a file that is missing,
unreadable, empty, too short or silent gets an error instead, and the exit
status is then 1. TensorFlow is not imported (LiteRT runs the model), so the
first result comes quickly.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from model.classifier import Classifier, classify_paths, read_file_list, resolve_model_dir

flags.DEFINE_string("model_dir", None, "A model.train run (or its export/); default: the shipped pretrained model.")
flags.DEFINE_enum("format", "text", ["text", "jsonl"], "text: a table; jsonl: one JSON object per file.")
flags.DEFINE_string("file_list", None, "A file with one audio path per line (added after the positional files).")
flags.DEFINE_integer("decode_workers", min(8, os.cpu_count() or 1), "Files decoded in parallel.")
flags.DEFINE_integer("chunk", 64, "Files decoded ahead of classification.")
FLAGS = flags.FLAGS


TEXT_HEADER = f"{'gender':<7}{'p_female':>9}{'seconds':>9}  path"


def format_text_row(prediction) -> str:
    """One aligned row; the path comes last so long paths do not break the columns."""
    if prediction.error is not None:
        return f"{'ERROR':<7}{'':>9}{'':>9}  {prediction.path}  ({prediction.error})"
    return f"{prediction.gender:<7}{prediction.p_female:>9.3f}{prediction.duration_s:>9.1f}  {prediction.path}"


def main(argv):
    paths = list(argv[1:])
    if FLAGS.file_list:
        paths += read_file_list(FLAGS.file_list)
    if not paths:
        raise app.UsageError("no audio files given (positional paths or --file_list)")
    classifier = Classifier(resolve_model_dir(FLAGS.model_dir))
    failed = 0
    if FLAGS.format == "text":
        print(TEXT_HEADER)
    for prediction in classify_paths(classifier, paths, FLAGS.decode_workers, FLAGS.chunk):
        failed += prediction.error is not None
        line = json.dumps(prediction.to_dict()) if FLAGS.format == "jsonl" else format_text_row(prediction)
        print(line, flush=True)
    if failed:
        print(f"{failed} of {len(paths)} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    app.run(main)
