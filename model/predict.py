"""Classifies audio files as male or female voices.

    python -m model.predict me.wav other.mp3
    python -m model.predict --format=jsonl --file_list=clips.txt > results.jsonl
    python -m model.predict --model_dir=runs/cnn clip.flac

Any length, any sample rate, mono or stereo, any format libsndfile reads (MP3,
WAV, FLAC, OGG). Without ``--model_dir`` the shipped pretrained model is used.
Every input gets one result, in input order; a file that is missing,
unreadable, not a regular file, empty, too short, silent or holds non-finite
samples gets an error line instead, and the exit status is then 1. Files of
any length are streamed in windows, so memory stays constant (a 2-hour file
needs no more than a 10-second one). TensorFlow is not imported (LiteRT runs
the model), so the first result comes quickly. Problems with the command
itself (model directory, file list) end it with one line on stderr, status 2.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

from absl import app, flags

from model.classifier import Classifier, FileListError, ModelDirError, classify_paths, iter_file_list, resolve_model_dir

flags.DEFINE_string("model_dir", None, "A model.train run (or its export/); default: the shipped pretrained model.")
flags.DEFINE_enum("format", "text", ["text", "jsonl"], "text: a table; jsonl: one JSON object per file.")
flags.DEFINE_string("file_list", None, "A file with one audio path per line (added after the positional files).")
flags.DEFINE_integer("decode_workers", min(8, os.cpu_count() or 1), "Files decoded and classified in parallel.",
                     lower_bound=1)
flags.DEFINE_integer("chunk", 64, "Files in flight at once (results still come in input order).", lower_bound=1)
FLAGS = flags.FLAGS


TEXT_HEADER = f"{'gender':<7}{'p_female':>9}{'seconds':>9}  path"


def format_text_row(prediction) -> str:
    """One aligned row; the path comes last so long paths do not break the columns."""
    if prediction.error is not None:
        return f"{'ERROR':<7}{'':>9}{'':>9}  {prediction.path}  ({prediction.error})"
    return f"{prediction.gender:<7}{prediction.p_female:>9.3f}{prediction.duration_s:>9.1f}  {prediction.path}"


def main(argv):
    paths = itertools.chain(argv[1:], iter_file_list(FLAGS.file_list) if FLAGS.file_list else ())
    try:
        first = next(paths, None)
        if first is None:
            raise app.UsageError("no audio files given (positional paths or --file_list)")
        classifier = Classifier(resolve_model_dir(FLAGS.model_dir))
        if FLAGS.format == "text":
            print(TEXT_HEADER)
        total = failed = 0
        for prediction in classify_paths(classifier, itertools.chain([first], paths), FLAGS.decode_workers,
                                         FLAGS.chunk):
            total += 1
            failed += prediction.error is not None
            line = json.dumps(prediction.to_dict()) if FLAGS.format == "jsonl" else format_text_row(prediction)
            print(line, flush=True)
    except (ModelDirError, FileListError) as e:
        print(f"predict: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`predict ... | head -1`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    if failed:
        print(f"{failed} of {total} files failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    app.run(main)
