"""Reading and selecting clips: the pre-flight checks of the inputs, then ReadClips, LimitClips,
CapClipsPerSpeaker, SplitBySpeaker (and what reading finds: LostSources, MixedGenderSpeakers)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import runner
from beam_jobs.config import PreprocessConfig
from beam_jobs.rejections import NAMESPACE, REJECTED, reject, reject_row
from pipeline import audio, features
from pipeline import common_voice as cv

UNREADABLE_TSV = cv.UNREADABLE_TSV
NOT_IN_OFFICIAL_SPLIT = "not_in_official_split"
DUPLICATE_CLIP = cv.DUPLICATE_CLIP
CONFLICTING_GENDER = cv.CONFLICTING_GENDER
# Rejections that lose a whole TSV (every row of a locale, or its split list): the job says so and exits 1.
SOURCE_REASONS = (cv.MISSING_COLUMNS, UNREADABLE_TSV, audio.NOT_A_FILE)


def expand_locale_dirs(cv_dir: str) -> list[str]:
    """The locale directories under ``cv_dir``.

    ``cv_dir`` is either a locale directory (holding validated.tsv) or a
    release root whose subdirectories are locales. Works for local and gs://
    paths through Beam's FileSystems. Local paths are normalized (``./cv/en``
    and ``cv/en`` are one locale, read once).
    """
    cv_dir = cv_dir.rstrip("/") if "://" in cv_dir else os.path.normpath(cv_dir)
    if FileSystems.exists(cv.join(cv_dir, cv.VALIDATED_TSV)):
        return [cv_dir]
    pattern = cv.join(cv_dir, "*", cv.VALIDATED_TSV)
    matches = FileSystems.match([pattern])[0].metadata_list
    return sorted(m.path[: -len(cv.VALIDATED_TSV) - 1] for m in matches)


def check_inputs(config: PreprocessConfig) -> list[str]:
    """Fails fast, before any work, on input that cannot be read at all.

    Returns:
      The locale directories found.

    Raises:
      JobError: naming the path and the reason.
    """
    return check_cv_dirs(config.cv_dirs, list(cv.OFFICIAL_SPLIT_TSVS) if config.use_official_splits else [])


def check_cv_dirs(cv_dirs: Sequence[str], extra_tsvs: Sequence[str] = ()) -> list[str]:
    """Lists the locale directories of ``cv_dirs`` and checks each TSV opens.

    Args:
      cv_dirs: locale directories or release roots.
      extra_tsvs: TSVs each locale needs besides validated.tsv.

    Returns:
      The locale directories found.

    Raises:
      JobError: naming the path and the reason.
    """
    locales = []
    for cv_dir in cv_dirs:
        try:
            found = expand_locale_dirs(cv_dir)
        except Exception as e:
            raise runner.JobError(f"cannot list --cv_dir {cv_dir}: {e}") from None
        if not found:
            raise runner.JobError(
                f"--cv_dir {cv_dir}: no {cv.VALIDATED_TSV} in it or in its subdirectories "
                "(expected a Common Voice locale directory or release root)"
            )
        for locale_dir in found:
            for name in [cv.VALIDATED_TSV, *extra_tsvs]:
                path = cv.join(locale_dir, name)
                if not_a_regular_file(path):
                    continue  # never opened (a FIFO would hang): the job rejects it, naming it, and goes on
                try:
                    with FileSystems.open(path) as f:
                        f.read(1)
                except Exception as e:
                    raise runner.JobError(f"cannot read {path}: {type(e).__name__}: {e}") from None
        locales.extend(found)
    return locales


def not_a_regular_file(path: str) -> str | None:
    """Why a local TSV must not be opened (a FIFO would hang, ``/dev/zero`` never ends), or None.

    Remote (gs://) objects are always regular files.
    """
    if "://" in path:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # opening it says why
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    link = f" (a symlink to {os.path.realpath(path)})" if os.path.islink(path) else ""
    return f"{path}: not a regular file but {kind}{link}; its rows were not read"


def loses_a_source(rejection: cv.Rejection) -> bool:
    """Whether a rejection lost a whole TSV (``SOURCE_REASONS``), not one row or clip."""
    tsv_names = (cv.VALIDATED_TSV, *cv.OFFICIAL_SPLIT_TSVS)
    return rejection.reason in SOURCE_REASONS and rejection.item.rsplit("/", 1)[-1] in tsv_names


class LostSources(beam.PTransform):
    """Rejections -> one sorted list (dicts for ``metadata.json``) of the TSVs that could not be used."""

    def expand(self, rejections):
        return (
            rejections
            | "WholeTsvs" >> beam.Filter(loses_a_source)  # at most a few per locale cross to the list
            | "AsList" >> beam.combiners.ToList()
            | "Dicts" >> beam.Map(lambda lost: [dataclasses.asdict(r) for r in sorted(lost, key=lambda r: r.item)])
        )


def open_tsv(path: str):
    """Opens a (local or gs://) TSV as a binary stream, for ``cv.iter_tsv_rows`` to read line by line.

    Raises:
      audio.AudioError: ``not_a_file`` for a local path that is not a regular file.
      OSError: it cannot be opened.
    """
    problem = not_a_regular_file(path)
    if problem:
        raise audio.AudioError(audio.NOT_A_FILE, problem)
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def count_rows(locale_dirs: Sequence[str]) -> int:
    """Lines after the header of each locale's validated.tsv: an upper bound of its labelled clips."""
    rows = 0
    for locale_dir in locale_dirs:
        try:
            with open_tsv(cv.join(locale_dir, cv.VALIDATED_TSV)) as stream:
                rows += max(0, sum(1 for line in stream if line.strip()) - 1)
        except Exception:  # noqa: BLE001 - the run itself reports a TSV it cannot read
            continue
    return rows


def tsv_failure(path: str, error: BaseException, rows_done: int) -> tuple[str, str]:
    """(reason, detail) of a TSV that failed while it was read (rows before the failure were used)."""
    if isinstance(error, audio.AudioError):
        return error.reason, error.detail
    where = f" after {rows_done:,} rows (those were kept)" if rows_done else ""
    return UNREADABLE_TSV, f"{path}: {type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]}{where}"


def read_tsv(path: str, parse: Callable[[BinaryIO], Iterable]) -> Iterator:
    """``parse(stream)``'s items for the TSV at ``path``, streaming; if the file fails (not a regular file, an
    I/O error halfway), its rejection comes last as a ``REJECTED`` output: that file's failure, never the job's."""
    rows_done = 0
    try:
        with open_tsv(path) as stream:
            for item in parse(stream):
                rows_done += 1
                yield item
    except Exception as e:  # noqa: BLE001 (the other locales go on)
        yield reject(path, *tsv_failure(path, e, rows_done))


Window = tuple[int, int, int]  # (index, count, seed): the speakers one pass of a windowed run reads (``windows``)


def reported_in_window(item, index: int) -> bool:
    """Whether window ``index`` reports a TSV item that is not a clip (a row or a TSV rejection).

    Rows have no speaker to hash, so window 0 reports them all. Every pass reads
    every TSV again and one can fail in any pass (an I/O error halfway), so a
    whole TSV lost is reported by each window that lost it (``windows.merge``
    keeps one line per TSV and reason): its missing rows are never silent.
    """
    if index == 0:
        return True
    rejection = item.value if isinstance(item, beam.pvalue.TaggedOutput) else item
    return isinstance(rejection, cv.Rejection) and loses_a_source(rejection)


def window_of(speaker_id: str, seed: int, count: int) -> int:
    """The window (0 .. count-1) a speaker's clips fall in: a seeded stable hash."""
    return min(count - 1, int(cv.stable_fraction("window", str(seed), speaker_id) * count))


class _ParseValidatedTsv(beam.DoFn):
    """Reads one locale's validated.tsv into Clips, streaming; everything else is rejected.

    With a window, only the clips of that window's speakers are kept, and the
    rows that are not clips (no speaker to hash) are reported by window 0 only.
    """

    def __init__(self, include_unlabelled: bool = False, window: Window | None = None):
        self._include_unlabelled = include_unlabelled
        self._window = window
        self._clips = Metrics.counter(NAMESPACE, "clips_read")

    def _in_window(self, item) -> bool:
        if self._window is None:
            return True
        index, count, seed = self._window
        if isinstance(item, cv.Clip):
            return window_of(item.speaker_id, seed, count) == index
        return reported_in_window(item, index)

    def process(self, locale_dir: str) -> Iterable:
        tsv_path = cv.join(locale_dir, cv.VALIDATED_TSV)
        logging.info("Reading %s", tsv_path)
        parse = functools.partial(cv.parse_validated_tsv, locale_dir=locale_dir,
                                  include_unlabelled=self._include_unlabelled)
        for item in read_tsv(tsv_path, parse):
            if not self._in_window(item):
                continue
            if isinstance(item, cv.Clip):
                self._clips.inc()
                yield item
            else:
                yield item if isinstance(item, beam.pvalue.TaggedOutput) else reject_row(item)


class ReadClips(beam.PTransform):
    """Common Voice directories -> (labelled Clips, Rejections).

    With ``include_unlabelled``, blank-gender rows are Clips too (label
    ``features.UNLABELLED``), for ``label_clips``.

    Nothing is listed or opened while the graph is built (Dataflow graphs are
    built offline); the directories are expanded when the job runs.
    """

    def __init__(self, cv_dirs: Sequence[str], include_unlabelled: bool = False, window: Window | None = None):
        super().__init__()
        self._cv_dirs = list(cv_dirs)
        self._include_unlabelled = include_unlabelled
        self._window = window

    def expand(self, pbegin):
        outputs = (
            pbegin
            | "CvDirs" >> beam.Create(self._cv_dirs)
            | "ListLocales" >> beam.FlatMap(expand_locale_dirs)
            # A locale given twice (a release root and one of its locales) is read once;
            # Distinct also spreads the TSVs over the workers.
            | "DistinctLocales" >> beam.Distinct()
            | "ParseTsv" >> beam.ParDo(_ParseValidatedTsv(self._include_unlabelled, self._window)).with_outputs(
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
    """One clip per ``<locale>/<path>``: a duplicated row would be decoded, written and counted twice.

    Rows that agree on the gender keep the first (``duplicate_clip`` for the
    others); rows that disagree are all refused (``conflicting_gender``): no
    label can be trusted.
    """

    def process(self, element) -> Iterable:
        clip_id, copies = element
        # The same choice on any runner; a labelled row before a blank one.
        copies = sorted(copies, key=lambda c: (c.label == features.UNLABELLED, c.speaker_id, c.label, c.age, c.accent))
        genders = {c.label for c in copies} - {features.UNLABELLED}  # a blank row beside a labelled one agrees
        if len(genders) > 1:
            listed = ", ".join(f"{features.GENDER_NAMES[c.label] if c.label in genders else 'blank'} "
                               f"(client_id {c.speaker_id[:16]})" for c in copies)
            for _ in copies:
                yield reject(clip_id, CONFLICTING_GENDER, f"{len(copies)} rows list this clip with different "
                                                          f"genders: {listed[:300]}; none was used")
            return
        yield copies[0]
        for _ in copies[1:]:
            yield reject(clip_id, DUPLICATE_CLIP, f"{len(copies)} rows list this clip; kept the first "
                                                  f"(client_id {copies[0].speaker_id[:16]}...)")


class MixedGenderSpeakers(beam.PTransform):
    """Clips -> one sorted list of the speakers whose clips carry both genders (usually empty).

    Common Voice labels come from a speaker's profile, so a speaker with male
    and female clips changed it or shares an account; the clips are kept, and
    the speakers are named in ``metadata.json`` and the job's summary. Only
    (speaker, label) pairs cross the shuffle.
    """

    def expand(self, clips):
        return (
            clips
            | "SpeakerLabel" >> beam.Map(lambda c: (c.speaker_id, c.label))
            | "DistinctPairs" >> beam.Distinct()
            | "LabelsPerSpeaker" >> beam.combiners.Count.PerKey()
            | "BothGenders" >> beam.FlatMap(lambda kv: [kv[0]] if kv[1] > 1 else [])
            | "AsList" >> beam.combiners.ToList()
            | "Sorted" >> beam.Map(sorted)
        )


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


class _ReadOfficialSplits(beam.DoFn):
    """A locale's train/dev/test.tsv -> (clip id, split), streaming; a TSV that cannot be read is rejected.

    In window ``window_index`` of a windowed run only what ``reported_in_window`` lets through is rejected.
    """

    def __init__(self, window_index: int = 0):
        self._window_index = window_index

    def process(self, locale_dir: str) -> Iterable:
        for name, split in cv.OFFICIAL_SPLIT_TSVS.items():
            # A split list that cannot be read: its clips become not_in_official_split; the job goes on.
            parse = functools.partial(cv.parse_split_tsv, locale_dir=locale_dir, name=name)
            for item in read_tsv(cv.join(locale_dir, name), parse):
                if isinstance(item, str):
                    yield item, split
                elif not reported_in_window(item, self._window_index):
                    continue
                else:
                    yield item if isinstance(item, beam.pvalue.TaggedOutput) else reject_row(item)


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
        self, seed: int, fractions: Sequence[float], official_cv_dirs: Sequence[str] | None = None,
        window_index: int = 0,
    ):
        super().__init__()
        self._seed = seed
        self._fractions = tuple(fractions)
        self._official_cv_dirs = list(official_cv_dirs) if official_cv_dirs else None
        self._window_index = window_index  # a windowed run's pass: which rejections of the split TSVs it reports

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
            | "ReadSplitTsvs" >> beam.ParDo(_ReadOfficialSplits(self._window_index)).with_outputs(REJECTED, main="listed")
        )
        # A join, not a side-input dict: a large release lists millions of
        # clips, more than every worker should hold.
        by_id = clips | "ById" >> beam.Map(lambda c: (c.clip_id, c))
        outputs = (
            {"clip": by_id, "split": official.listed}
            | "JoinSplits" >> beam.CoGroupByKey()
            | "AssignOfficial" >> beam.ParDo(_AssignOfficialSplit()).with_outputs(REJECTED, main="keyed")
        )
        rejected = (official[REJECTED], outputs[REJECTED]) | "SplitRejections" >> beam.Flatten()
        return outputs.keyed, rejected


def split_label_key(split: str, label: int) -> str:
    """Key of a (split, gender) group, e.g. ``train/female``."""
    return f"{split}/{features.GENDER_NAMES[label]}"
