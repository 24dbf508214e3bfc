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

from pipeline import console

if __name__ == "__main__":
    # Before TensorFlow is imported, here and in every worker process.
    console.silence_tensorflow_startup()

from absl import app, flags

from beam_jobs import job, runner
from pipeline import features

FLAGS = flags.FLAGS

flags.DEFINE_multi_string("cv_dir", None, "Locale directory (validated.tsv + clips/) or release root; local or gs://. Repeatable.")
flags.DEFINE_string("output_dir", None, "Where the TFRecord shards, rejected-*.tsv and metadata.json go.")
flags.DEFINE_enum("features", features.DEFAULT_FEATURE_SET, sorted(features.FEATURE_SETS), "Feature set.")
flags.DEFINE_integer("block_frames", None, "Frames per block (default: the feature set's).")
flags.DEFINE_list("split_fractions", ["0.8", "0.1", "0.1"], "Train,validation,test fractions of speakers.")
flags.DEFINE_bool("use_official_splits", False, "Use the release's train/dev/test.tsv instead of hashing speakers.")
flags.DEFINE_integer("max_clips_per_speaker", 20, "Clips kept per client_id (0: all).")
flags.DEFINE_integer("max_blocks_per_clip", 10, "Voiced blocks kept per clip, evenly spaced (0: all).")
flags.DEFINE_bool("balance_clips", True, "Balance genders by clips before decoding (blocks are balanced either way); "
                  "--nobalance_clips keeps every clip's speaker.")
flags.DEFINE_integer("seed", 42, "Seed of every random choice.")
flags.DEFINE_integer("limit_clips", 0, "Use only this many labelled clips (0: all); for quick runs.")
flags.DEFINE_float("target_shard_mb", 128.0, "Uncompressed MB per TFRecord shard.")
flags.DEFINE_bool("overwrite", False, "Replace an earlier run's outputs in --output_dir.")
flags.DEFINE_float("max_clip_seconds", 120.0, "Longer clips are rejected as too_long (judged from the header).")



def main(argv: list[str]) -> None:
    beam_args = runner.with_default_runner(argv[1:])
    feature_set = features.get_feature_set(FLAGS.features)
    if FLAGS.block_frames:
        feature_set = dataclasses.replace(feature_set, block_frames=FLAGS.block_frames)
    try:
        config = job.PreprocessConfig(
            cv_dirs=tuple(FLAGS.cv_dir or ()),
            output_dir=FLAGS.output_dir or "",
            feature_set=feature_set,
            split_fractions=tuple(float(f) for f in FLAGS.split_fractions),
            use_official_splits=FLAGS.use_official_splits,
            max_clips_per_speaker=FLAGS.max_clips_per_speaker,
            max_blocks_per_clip=FLAGS.max_blocks_per_clip,
            balance_clips=FLAGS.balance_clips,
            seed=FLAGS.seed,
            limit_clips=FLAGS.limit_clips,
            target_shard_mb=FLAGS.target_shard_mb,
            overwrite=FLAGS.overwrite,
            max_clip_seconds=FLAGS.max_clip_seconds,
        )
        metadata = job.run(config, beam_args)
    except (ValueError, job.JobError) as e:
        sys.exit(f"preprocess: error: {e}")
    if metadata is not None:
        print(job.summarize(metadata, config.output_dir))


if __name__ == "__main__":
    runner.configure_logging()
    app.run(main, flags_parser=runner.parse_known_flags)
