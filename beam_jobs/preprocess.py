r"""Common Voice releases -> balanced, speaker-disjoint, sharded TFRecords.

Usage:
  python -m beam_jobs.preprocess --cv_dir=/data/cv-corpus-6.1/en \
      --output_dir=/tmp/vg_data [--flagfile=configs/preprocess.flags]

Beam options (--runner, --direct_num_workers, --project, --region,
--temp_location, --setup_file, --dry_run, ...) are passed through untouched.
Without --runner the job runs on the DirectRunner in multi-processing mode on
all cores.
"""

from __future__ import annotations

import dataclasses
import sys

from absl import flags

from beam_jobs import job, runner, summary
from beam_jobs.config import PreprocessConfig
from pipeline import config_flags, features

FLAGS = flags.FLAGS

# Every PreprocessConfig field is a flag of the same name (cv_dirs: the repeatable --cv_dir), except
# feature_set: a FeatureSet holds a dozen spectrogram parameters, of which the command line picks a named
# set and may change only the block length, so it is mapped by _feature_set below.
config_flags.define_flags(PreprocessConfig, exclude=("feature_set",))
flags.DEFINE_enum("features", features.DEFAULT_FEATURE_SET, sorted(features.FEATURE_SETS), "Feature set.")
flags.DEFINE_integer("block_frames", None, "Frames per block (default: the feature set's).")


def _feature_set(flag_values: flags.FlagValues) -> features.FeatureSet:
    """--features, with --block_frames when given."""
    feature_set = features.get_feature_set(flag_values.features)
    if flag_values.block_frames:
        feature_set = dataclasses.replace(feature_set, block_frames=flag_values.block_frames)
    return feature_set


def main(argv: list[str]) -> None:
    beam_args = runner.with_default_runner(argv[1:])
    try:
        config = config_flags.from_flags(PreprocessConfig, FLAGS, feature_set=_feature_set(FLAGS))
        metadata = job.run(config, beam_args)
    except (ValueError, runner.JobError) as e:
        print(f"preprocess: error: {e}", file=sys.stderr)
        sys.exit(getattr(e, "exit_status", 2))  # 2: the command is wrong; 1: the data it made cannot train
    if metadata is not None:
        print(summary.summarize(metadata, config.output_dir))
        if metadata.get("lost_sources"):  # a whole TSV was not read: the data lacks what the user asked for
            sys.exit(1)


def run(argv: list[str] | None = None) -> None:
    """The preprocessing command: ``python -m beam_jobs.preprocess`` and ``voicegender preprocess`` (flags and flagfiles alike)."""
    runner.configure_logging()
    config_flags.run_command(main, __name__, argv, flags_parser=runner.parse_known_flags)


if __name__ == "__main__":
    run()
