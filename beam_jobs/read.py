"""Reading and selecting clips: ReadClips, LimitClips, CapClipsPerSpeaker, SplitBySpeaker."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import common_voice as cv
from beam_jobs.rejections import NAMESPACE, REJECTED, reject, reject_row
from pipeline import features

UNREADABLE_TSV = "unreadable_tsv"
NOT_IN_OFFICIAL_SPLIT = "not_in_official_split"
DUPLICATE_CLIP = "duplicate_clip"


def expand_locale_dirs(cv_dir: str) -> list[str]:
    """The locale directories under ``cv_dir``.

    ``cv_dir`` is either a locale directory (holding validated.tsv) or a
    release root whose subdirectories are locales. Works for local and gs://
    paths through Beam's FileSystems.
    """
    cv_dir = cv_dir.rstrip("/")
    if FileSystems.exists(cv.join(cv_dir, cv.VALIDATED_TSV)):
        return [cv_dir]
    pattern = cv.join(cv_dir, "*", cv.VALIDATED_TSV)
    matches = FileSystems.match([pattern])[0].metadata_list
    return sorted(m.path[: -len(cv.VALIDATED_TSV) - 1] for m in matches)


def read_text(path: str) -> io.TextIOWrapper:
    """Opens a (local or gs://) text file for csv, keeping CR/LF for csv."""
    return io.TextIOWrapper(FileSystems.open(path), encoding="utf-8", newline="")


class _ParseValidatedTsv(beam.DoFn):
    """Reads one locale's validated.tsv into Clips; everything else is rejected."""

    def __init__(self, include_unlabelled: bool = False):
        self._include_unlabelled = include_unlabelled
        self._clips = Metrics.counter(NAMESPACE, "clips_read")

    def process(self, locale_dir: str) -> Iterable:
        tsv_path = cv.join(locale_dir, cv.VALIDATED_TSV)
        logging.info("Reading %s", tsv_path)
        try:
            with read_text(tsv_path) as stream:
                # Materialise inside the try: a read error halfway through the
                # file is also this file's failure, not the job's.
                parsed = list(cv.parse_validated_tsv(stream, locale_dir, self._include_unlabelled))
        except (OSError, UnicodeDecodeError, csv.Error) as e:  # this file's failure, never the job's
            yield reject(tsv_path, UNREADABLE_TSV, f"{type(e).__name__}: {str(e)[:300]}")
            return
        for item in parsed:
            if isinstance(item, cv.Clip):
                self._clips.inc()
                yield item
            else:
                yield reject_row(item)


class ReadClips(beam.PTransform):
    """Common Voice directories -> (labelled Clips, Rejections).

    With ``include_unlabelled``, blank-gender rows are Clips too (label
    ``features.UNLABELLED``), for ``label_clips``.

    Nothing is listed or opened while the graph is built (Dataflow graphs are
    built offline); the directories are expanded when the job runs.
    """

    def __init__(self, cv_dirs: Sequence[str], include_unlabelled: bool = False):
        super().__init__()
        self._cv_dirs = list(cv_dirs)
        self._include_unlabelled = include_unlabelled

    def expand(self, pbegin):
        outputs = (
            pbegin
            | "CvDirs" >> beam.Create(self._cv_dirs)
            | "ListLocales" >> beam.FlatMap(expand_locale_dirs)
            # A locale given twice (a release root and one of its locales) is read once;
            # Distinct also spreads the TSVs over the workers.
            | "DistinctLocales" >> beam.Distinct()
            | "ParseTsv" >> beam.ParDo(_ParseValidatedTsv(self._include_unlabelled)).with_outputs(
                REJECTED, main="clips")
        )
        unique = (
            outputs.clips
            | "ById" >> beam.Map(lambda c: (c.clip_id, c))
            | "GroupById" >> beam.GroupByKey()
            | "KeepOne" >> beam.ParDo(_KeepOneFn()).with_outputs(REJECTED, main="clips")
        )
        rejected = (outputs[REJECTED], unique[REJECTED]) | "AllRowRejections" >> beam.Flatten()
        return unique.clips, rejected


class _KeepOneFn(beam.DoFn):
    """One clip per ``<locale>/<path>``: a duplicated row would be decoded, written and counted twice."""

    def process(self, element) -> Iterable:
        clip_id, copies = element
        copies = sorted(copies, key=lambda c: (c.speaker_id, c.label, c.age, c.accent))  # the same choice on any runner
        yield copies[0]
        for _ in copies[1:]:
            yield reject(clip_id, DUPLICATE_CLIP, f"{len(copies)} rows list this clip; kept the first "
                                                  f"(client_id {copies[0].speaker_id[:16]}...)")


class LimitClips(beam.PTransform):
    """Keeps ``limit`` clips chosen by a seeded hash (0 keeps all): quick runs."""

    def __init__(self, limit: int, seed: int):
        super().__init__()
        self._limit = limit
        self._seed = seed

    def expand(self, clips):
        if self._limit <= 0:
            return clips
        seed = str(self._seed)
        return (
            clips
            | "SmallestHashes" >> beam.combiners.Top.Of(
                self._limit, key=lambda c: cv.stable_fraction("limit", seed, c.clip_id), reverse=True
            )
            | "Flatten" >> beam.FlatMap(lambda kept: kept)
        )


class CapClipsPerSpeaker(beam.PTransform):
    """Keeps at most ``max_clips`` clips of each speaker (a seeded choice).

    A few Common Voice speakers record thousands of clips; uncapped, they
    would dominate both the training data and the balance counts. The
    ``Top.PerKey`` combiner keeps memory at ``max_clips`` per speaker.
    """

    def __init__(self, max_clips: int, seed: int):
        super().__init__()
        self._max_clips = max_clips
        self._seed = seed

    def expand(self, clips):
        if self._max_clips <= 0:
            return clips
        seed = str(self._seed)
        return (
            clips
            | "BySpeaker" >> beam.Map(lambda c: (c.speaker_id, c))
            | "TopPerSpeaker" >> beam.combiners.Top.PerKey(
                self._max_clips, key=lambda c: cv.stable_fraction("cap", seed, c.clip_id), reverse=True
            )
            | "Flatten" >> beam.FlatMap(lambda kv: kv[1])
        )


def _read_official_splits(locale_dir: str) -> Iterable[tuple[str, str]]:
    for name, split in cv.OFFICIAL_SPLIT_TSVS.items():
        with read_text(cv.join(locale_dir, name)) as stream:
            for clip_id in cv.parse_split_tsv(stream, locale_dir):
                yield clip_id, split


class _AssignOfficialSplit(beam.DoFn):
    """Joins a clip with the official split that lists it (if any)."""

    def process(self, joined: tuple) -> Iterable:
        _, grouped = joined
        splits = list(grouped["split"])
        for clip in grouped["clip"]:
            if splits:
                yield splits[0], clip
            else:
                yield reject(clip.clip_id, NOT_IN_OFFICIAL_SPLIT, "in no train/dev/test.tsv")


class SplitBySpeaker(beam.PTransform):
    """Clip -> (split, Clip), every speaker in exactly one split.

    By default a seeded stable hash of ``client_id`` picks the split (so no
    voice is in two splits, unlike the seed article's per-clip split). With
    ``cv_dirs`` given, the release's own train/dev/test.tsv decide instead and
    clips in none of them are rejected.

    Returns:
      (keyed clips, rejections).
    """

    def __init__(
        self, seed: int, fractions: Sequence[float], official_cv_dirs: Sequence[str] | None = None
    ):
        super().__init__()
        self._seed = seed
        self._fractions = tuple(fractions)
        self._official_cv_dirs = list(official_cv_dirs) if official_cv_dirs else None

    def expand(self, clips):
        if self._official_cv_dirs is None:
            seed, fractions = self._seed, self._fractions
            keyed = clips | "HashSpeaker" >> beam.Map(
                lambda c: (cv.speaker_split(c.speaker_id, seed, fractions), c)
            )
            empty = clips.pipeline | "NoRejections" >> beam.Create([])
            return keyed, empty
        official = (
            clips.pipeline
            | "OfficialCvDirs" >> beam.Create(self._official_cv_dirs)
            | "OfficialLocales" >> beam.FlatMap(expand_locale_dirs)
            | "ReadSplitTsvs" >> beam.FlatMap(_read_official_splits)
        )
        # A join, not a side-input dict: a large release lists millions of
        # clips, more than every worker should hold.
        by_id = clips | "ById" >> beam.Map(lambda c: (c.clip_id, c))
        outputs = (
            {"clip": by_id, "split": official}
            | "JoinSplits" >> beam.CoGroupByKey()
            | "AssignOfficial" >> beam.ParDo(_AssignOfficialSplit()).with_outputs(REJECTED, main="keyed")
        )
        return outputs.keyed, outputs[REJECTED]


def split_label_key(split: str, label: int) -> str:
    """Key of a (split, gender) group, e.g. ``train/female``."""
    return f"{split}/{features.GENDER_NAMES[label]}"
