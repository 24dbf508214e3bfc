"""Predicts the gender of Common Voice clips that have none, with a trained model.

    python -m beam_jobs.label_clips --cv_dir=/data/cv-corpus-17.0/en --output=/data/vg/labels
    python -m beam_jobs.label_clips --cv_dir=gs://b/cv --output=gs://b/labels \\
        --model_dir=gs://b/vg/cnn/export --flagfile=configs/dataflow.flags

Writes to ``--output``: ``clips-00000-of-00001.tsv`` (every scored clip:
client_id, path, locale, given label, p_female, predicted, duration),
``speakers-*.tsv`` (per client_id: clips, label, pooled p_female, predicted,
confidence, agreement of its clips), ``mislabels-*.tsv`` (with
``--score_labelled``: labelled clips and speakers a confident prediction
disagrees with) and ``rejected-*.tsv`` (clips that could not be scored, with
reasons). Beam options pass through; without ``--runner`` it runs locally on
all cores.
"""

from __future__ import annotations

import logging
import sys

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()

import apache_beam as beam  # noqa: E402
from absl import app, flags  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from beam_jobs import job, label, runner  # noqa: E402
from beam_jobs.read import LimitClips, ReadClips  # noqa: E402
from beam_jobs.write import WriteRejected  # noqa: E402
from pipeline import features  # noqa: E402

flags.DEFINE_multi_string("cv_dir", None, "Locale directory or release root; local or gs://. Repeatable.")
flags.DEFINE_string("output", None, "Directory for clips/speakers/mislabels/rejected TSVs.")
flags.DEFINE_string("model_dir", None, "An export/ with model.tflite (local or gs://); default: the pretrained model.")
flags.DEFINE_bool("score_labelled", False, "Also score labelled clips, and list likely mislabels.")
flags.DEFINE_float("mislabel_confidence", 0.9, "Confidence a prediction needs to call a label into question.")
flags.DEFINE_integer("limit_clips", 0, "Score only this many clips (0: all); for quick runs.")
flags.DEFINE_integer("seed", 42, "Seed of --limit_clips's choice.")
FLAGS = flags.FLAGS


def build(p: beam.Pipeline, cv_dirs, output: str, model_dir, score_labelled: bool, mislabel_confidence: float,
          limit_clips: int, seed: int, progress_dir: str | None = None) -> None:
    """The labelling job: read, classify, pool per speaker, flag, write."""
    clips, bad_rows = p | "ReadClips" >> ReadClips(cv_dirs, include_unlabelled=True)
    if not score_labelled:
        clips = clips | "OnlyUnlabelled" >> beam.Filter(lambda c: c.label == features.UNLABELLED)
    clips = clips | "LimitClips" >> LimitClips(limit_clips, seed)
    scores, bad_audio = clips | "ClassifyClips" >> label.ClassifyClips(model_dir, progress_dir)
    speakers = scores | "AggregateSpeakers" >> label.AggregateSpeakers()
    label.write_tsv(scores | "ClipLines" >> beam.Map(label.clip_line), output, label.CLIPS_FILE, label.CLIPS_HEADER,
                    "WriteClips")
    label.write_tsv(speakers | "SpeakerLines" >> beam.Map(label.speaker_line), output, label.SPEAKERS_FILE,
                    label.SPEAKERS_HEADER, "WriteSpeakers")
    if score_labelled:
        suspects = (scores, speakers) | "FlagMislabels" >> label.FlagMislabels(mislabel_confidence)
        label.write_tsv(suspects, output, label.MISLABELS_FILE, label.MISLABELS_HEADER, "WriteMislabels")
    # Rows with a self-described non-binary value are not guessed; they are listed like bad clips.
    rejected = (bad_rows, bad_audio) | "AllRejections" >> beam.Flatten()
    _ = rejected | "WriteRejected" >> WriteRejected(output)


def main(argv: list[str]) -> None:
    beam_args = runner.with_default_runner(argv[1:])
    if not FLAGS.cv_dir or not FLAGS.output:
        sys.exit("label_clips: error: --cv_dir and --output are required")
    options = PipelineOptions(beam_args)
    try:
        if not runner.is_dry_run(options):  # a dry run must work offline: Dataflow graphs are built without GCS
            locales = job.check_cv_dirs(FLAGS.cv_dir)
            logging.info("Found %d locale(s)", len(locales))
    except job.JobError as e:
        sys.exit(f"label_clips: error: {e}")
    ran = runner.run_pipeline(
        lambda p, progress_dir: build(p, FLAGS.cv_dir, FLAGS.output, FLAGS.model_dir, FLAGS.score_labelled,
                                      FLAGS.mislabel_confidence, FLAGS.limit_clips, FLAGS.seed, progress_dir),
        options)
    if ran:
        print(f"Wrote {FLAGS.output}/{{{label.CLIPS_FILE},{label.SPEAKERS_FILE},rejected}}-*.tsv"
              + (f" and {label.MISLABELS_FILE}-*.tsv" if FLAGS.score_labelled else ""))


if __name__ == "__main__":
    runner.configure_logging()
    app.run(main, flags_parser=runner.parse_known_flags)
