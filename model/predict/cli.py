"""Classifies audio files as male or female voices.

    python -m model.predict me.wav other.mp3
    python -m model.predict --format=jsonl --file_list=clips.txt > results.jsonl
    python -m model.predict --min_confidence=0.8 --format=csv *.wav
    python -m model.predict --file_list=cv/en/validated.tsv --speaker_from=client_id
    python -m model.predict --model_dir=runs/cnn clip.flac

Any length, any sample rate, mono or stereo, any format libsndfile reads (MP3,
WAV, FLAC, OGG). Without ``--model_dir`` the shipped pretrained model is used.
Every input gets one result, in input order, judged on the file's speech only
(``--vad``: music, noise and silence never count; ``speech_s`` says how much
speech there was). A file that is missing, unreadable, not a regular file,
empty, too short, silent, holds no speech or non-finite samples gets an error
line instead, and the exit status is then 1. Below
``--min_confidence`` the answer is ``uncertain`` (p_female still given).
``--speaker_from`` (a column of a TSV ``--file_list``, or a regular
expression with a group around the speaker id in the path) prints one pooled
verdict per speaker instead, with the clips' agreement; failed files then go
to stderr. Files of any length are streamed in windows, so memory stays
constant (a 2-hour file needs no more than a 10-second one). TensorFlow is not
imported (LiteRT runs the model), so the first result comes quickly. Problems
with the command itself (model directory, file list, pattern) end it with one
line on stderr, status 2.
"""

from __future__ import annotations

import concurrent.futures.process
import itertools
import os
import sys

import numpy as np
from absl import flags

from model.predict import batched, jobs, output, segments, vad
from model.predict.classifier import Classifier, failure, map_in_order
from model.predict.config import PredictConfig
from model.predict.export_format import ModelDirError, resolve_model_dir
from model.predict.file_list import FileEntry, FileListError, iter_file_entries
from model.predict.pooling import SpeakerPattern, SpeakerPool
from pipeline import config_flags

# Every PredictConfig field is a flag of the same name.
config_flags.define_flags(PredictConfig)
FLAGS = flags.FLAGS
NO_SPEAKER = "no_speaker"  # the reason of a file whose speaker id --speaker_from cannot read


class UsageProblem(ValueError):
    """A problem with the command line itself (reported in one line, status 2)."""


def check_vad(method: str) -> None:
    """Runs the speech detector once on silence, so a missing package is a usage error, not one per file.

    Raises:
      UsageProblem: naming the method and what is missing.
    """
    try:
        vad.speech_frames(np.zeros(vad.SAMPLE_RATE // 10, np.float32), method)
    except ValueError as e:
        raise UsageProblem(f"--vad={method}: {e}") from None


def speaker_reader(speaker_from: str, first: FileEntry):
    """entry -> speaker id (or None): a TSV column when the list has one by that name, else a path pattern.

    Raises:
      UsageProblem: the pattern is not a regular expression with a group.
    """
    if first.fields is not None and speaker_from in first.fields:
        return lambda entry: (entry.fields or {}).get(speaker_from) or None
    try:
        pattern = SpeakerPattern(speaker_from)
    except ValueError as e:
        raise UsageProblem(str(e)) from None
    return lambda entry: pattern.speaker(entry.path)


def print_speakers(entries, predictions, read_speaker, speaker_from: str, writer, threshold: float,
                   min_confidence: float):
    """Pools the predictions per speaker; failed files and files without a speaker go to stderr.

    Returns:
      (files, failed files).
    """
    pool = SpeakerPool(threshold)
    total = failed = 0
    for entry, prediction in zip(entries, predictions, strict=True):
        total += 1
        speaker = read_speaker(entry)
        if prediction.error is None and speaker is None:
            prediction = failure(entry.path, NO_SPEAKER, f"--speaker_from {speaker_from!r} gives no id for this file")
        if prediction.error is not None:
            failed += 1
            print(f"{prediction.path}: {prediction.error}", file=sys.stderr)
            continue
        pool.add(speaker, prediction.p_female)
    for verdict in pool.verdicts():
        writer.speaker(verdict, min_confidence)
    return total, failed


def main(argv):
    try:
        config = config_flags.from_flags(PredictConfig, FLAGS)
    except ValueError as e:
        print(f"predict: error: {e}", file=sys.stderr)
        return 2
    entries = itertools.chain((FileEntry(p) for p in argv[1:]),
                              iter_file_entries(config.file_list) if config.file_list else ())
    try:
        first = next(entries, None)
        if first is None:
            raise UsageProblem("no audio files given (positional paths or --file_list)")
        read_speaker = speaker_reader(config.speaker_from, first) if config.speaker_from else None
        classifier = Classifier(resolve_model_dir(config.model_dir))
        entries = itertools.chain([first], entries)
        if config.vad != segments.WHOLE_FILE:
            check_vad(config.vad)
        total, failed = report(config, classifier, entries, read_speaker)
    except (ModelDirError, FileListError, UsageProblem) as e:
        print(f"predict: error: {e}", file=sys.stderr)
        return 2
    except concurrent.futures.process.BrokenProcessPool as e:  # --jobs: a worker died (killed for memory?)
        print(f"predict: error: a worker process died ({e}); results so far were written", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`predict ... | head -1`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    if failed:
        print(f"{failed} of {total} files failed", file=sys.stderr)
    return 1 if failed else 0


def report(config: PredictConfig, classifier: Classifier, entries, read_speaker) -> tuple[int, int]:
    """Classifies every entry and writes its records (files, speakers or segments) to stdout, in input order.

    Returns:
      (files, failed files).
    """
    results = results_in_order(config, classifier)
    if config.segments:
        writer = output.Writer(config.format, sys.stdout, records="segment", errors=sys.stderr)
        total = failed = 0
        for result in results(e.path for e in entries):
            total += 1
            failed += result.error is not None
            writer.segments(result, config.min_confidence)
        return total, failed
    if read_speaker is not None:
        writer = output.Writer(config.format, sys.stdout, records="speaker")
        # Two views of one lazy stream: the pool reads ahead by at most --chunk files, which tee buffers.
        entries, for_paths = itertools.tee(entries)
        return print_speakers(entries, results(e.path for e in for_paths), read_speaker, config.speaker_from,
                              writer, classifier.threshold, config.min_confidence)
    writer = output.Writer(config.format, sys.stdout)
    total = failed = 0
    for prediction in results(e.path for e in entries):
        total += 1
        failed += prediction.error is not None
        writer.file(prediction.with_min_confidence(config.min_confidence))
    return total, failed


def results_in_order(config: PredictConfig, classifier: Classifier):
    """paths -> each file's result in input order: in this process's threads, or in ``--jobs`` processes."""
    size = config.batch if batched.is_batched(config.vad, config.segments) else 1
    if config.jobs > 1:
        return lambda paths: jobs.map_in_processes(paths, config.jobs, config.chunk, size, classifier.model_dir,
                                                   config.vad, config.segments)
    fn = batched.group_function(classifier, config.vad, config.segments)
    in_flight = max(1, config.chunk // size)
    return lambda paths: itertools.chain.from_iterable(
        map_in_order(fn, batched.groups(paths, size), config.decode_workers, in_flight))


def run(argv: list[str] | None = None) -> None:
    """The predict command: ``python -m model.predict`` and ``voicegender predict`` (flags and flagfiles alike)."""
    config_flags.run_command(main, __name__, argv)
