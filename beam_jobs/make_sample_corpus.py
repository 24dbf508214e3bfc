"""Writes the built-in synthetic sample corpus (Common Voice layout, offline).

Usage:
  python -m beam_jobs.make_sample_corpus --output_dir=/tmp/vg_sample
"""

from __future__ import annotations

from absl import app, flags

from beam_jobs import sample_corpus

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Release root to write (locales en/ and de/).", required=True)
flags.DEFINE_integer("speakers_per_gender", 6, "Speakers of each gender per locale.")
flags.DEFINE_integer("clips_per_speaker", 4, "Clips per speaker.")
flags.DEFINE_integer("seed", 0, "Random seed.")


def main(argv: list[str]) -> None:
    del argv
    counts = sample_corpus.make_corpus(
        FLAGS.output_dir, FLAGS.speakers_per_gender, FLAGS.clips_per_speaker, FLAGS.seed
    )
    print(
        f"Wrote {FLAGS.output_dir}: {counts['male']} male and {counts['female']} female clips, "
        f"{counts['bad']} bad rows (blank/other gender, missing, corrupt, empty, short, silent, malformed)"
    )


if __name__ == "__main__":
    app.run(main)
