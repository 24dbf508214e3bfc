"""Predicts the gender of Common Voice clips that have none, with a trained model.

    python -m model.label --cv_dir=/data/cv-corpus-17.0/en --output=/data/vg/labels
    python -m model.label --cv_dir=gs://b/cv --output=gs://b/labels \\
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

import apache_beam as beam
from absl import flags
from apache_beam.options.pipeline_options import PipelineOptions

from beam_jobs import outputs, read, runner
from beam_jobs.read import LimitClips, ReadClips
from beam_jobs.write import WriteRejected
from model.label import transforms as label
from model.label.config import LabelClipsConfig
from pipeline import common_voice as cv
from pipeline import config_flags, features

# Every LabelClipsConfig field is a flag of the same name (cv_dirs: the repeatable --cv_dir).
config_flags.define_flags(LabelClipsConfig)
FLAGS = flags.FLAGS


def build(p: beam.Pipeline, config: LabelClipsConfig, progress_dir: str | None = None) -> None:
    """The labelling job: read, classify, pool per speaker, flag, write."""
    output = config.output
    clips, bad_rows = p | "ReadClips" >> ReadClips(config.cv_dirs, include_unlabelled=True)
    if not config.score_labelled:
        clips = clips | "OnlyUnlabelled" >> beam.Filter(lambda c: c.label == features.UNLABELLED)
    clips = clips | "LimitClips" >> LimitClips(config.limit_clips, config.seed)
    scores, bad_audio = clips | "ClassifyClips" >> label.ClassifyClips(config.model_dir, progress_dir)
    speakers = scores | "AggregateSpeakers" >> label.AggregateSpeakers()
    label.write_tsv(scores | "ClipLines" >> beam.Map(label.clip_line), output, label.CLIPS_FILE, label.CLIPS_HEADER,
                    "WriteClips")
    label.write_tsv(speakers | "SpeakerLines" >> beam.Map(label.speaker_line), output, label.SPEAKERS_FILE,
                    label.SPEAKERS_HEADER, "WriteSpeakers")
    if config.score_labelled:
        suspects = (scores, speakers) | "FlagMislabels" >> label.FlagMislabels(config.mislabel_confidence)
        label.write_tsv(suspects, output, label.MISLABELS_FILE, label.MISLABELS_HEADER, "WriteMislabels")
    # Rows with a self-described non-binary value are not guessed; they are listed like bad clips.
    rejected = (bad_rows, bad_audio) | "AllRejections" >> beam.Flatten()
    _ = rejected | "WriteRejected" >> WriteRejected(output)


def main(argv: list[str]) -> None:
    beam_args = runner.with_default_runner(argv[1:])
    try:
        config = config_flags.from_flags(LabelClipsConfig, FLAGS)
    except ValueError as e:
        print(f"label_clips: error: {e}", file=sys.stderr)
        sys.exit(2)
    options = PipelineOptions(beam_args)
    try:
        if not runner.is_dry_run(options):  # a dry run must work offline: Dataflow graphs are built without GCS
            locales = read.check_cv_dirs(config.cv_dirs)
            logging.info("Found %d locale(s)", len(locales))
            outputs.check_output_writable(config.output, "--output")
    except runner.JobError as e:
        print(f"label_clips: error: {e}", file=sys.stderr)
        sys.exit(2)  # the command is wrong
    result = runner.run_pipeline(lambda p, progress_dir: build(p, config, progress_dir), options)
    if result is None:
        return
    print(f"Wrote {config.output}/{{{label.CLIPS_FILE},{label.SPEAKERS_FILE},rejected}}-*.tsv"
          + (f" and {label.MISLABELS_FILE}-*.tsv" if config.score_labelled else ""))
    # As predict: status 1 when a clip (or a TSV) could not be labelled; rows it never labels by design
    # (self-described non-binary genders, a clip listed twice) are listed in rejected-*.tsv but do not fail it.
    rejected = runner.rejected_count(result, ignore=("gender_", cv.DUPLICATE_CLIP))
    if rejected:
        print(f"label_clips: {rejected} clips or files could not be labelled; reasons in "
              f"{config.output}/rejected-*.tsv", file=sys.stderr)
        sys.exit(1)


def run(argv: list[str] | None = None) -> None:
    """The labelling command: ``python -m model.label`` and ``voicegender label`` (flags and flagfiles alike)."""
    runner.configure_logging()
    config_flags.run_command(main, __name__, argv, flags_parser=runner.parse_known_flags)
