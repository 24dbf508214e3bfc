"""Reading Common Voice release TSVs: both schemas, every real-world quirk.

Pure Python (no Beam), so it is easy to test and reuse. Common Voice TSVs are
UTF-8, tab-separated, one header row, never quoted (sentences contain quote
characters, so they are read with ``QUOTE_NONE``), with LF or CRLF endings.
Up to 16.1 the gender column holds male/female/other and accents are in
``accent``; from 17.0 it holds male_masculine, female_feminine, intersex,
transgender, non-binary or do_not_wish_to_say and accents are in ``accents``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import posixpath
from collections.abc import Iterator, Sequence
from typing import IO

from pipeline import audio, features

VALIDATED_TSV = "validated.tsv"
CLIPS_DIR = "clips"
# The release's own splits (used with --use_official_splits).
OFFICIAL_SPLIT_TSVS = {
    "train.tsv": features.TRAIN,
    "dev.tsv": features.VALIDATION,
    "test.tsv": features.TEST,
}
REQUIRED_COLUMNS = ("client_id", "path", "gender")

# Only clear male and female labels are used; nothing else is guessed.
GENDER_LABELS = {
    "male": features.MALE,
    "male_masculine": features.MALE,
    "female": features.FEMALE,
    "female_feminine": features.FEMALE,
}
# Known non-binary-label values, each counted under its own reason.
KNOWN_OTHER_GENDERS = (
    "other",
    "intersex",
    "transgender",
    "non-binary",
    "do_not_wish_to_say",
)

# Reason codes for rows that are not used.
GENDER_BLANK = "gender_blank"
MALFORMED_ROW = "malformed_row"
MISSING_COLUMNS = "missing_columns"
GENDER_UNKNOWN = "gender_unknown_value"
PATH_OUTSIDE_CLIPS = audio.PATH_OUTSIDE_CLIPS  # one reason, whether the TSV or a symlink points out

# A real field (a sentence, an accent description) is a few hundred
# characters. Longer ones make their row malformed; csv's own limit (131,072)
# is raised so that such a row is rejected alone instead of raising and
# losing its whole file. Only a field over the raised limit still fails the
# file (as ``unreadable_tsv``), never the job.
MAX_FIELD_CHARS = 65_536
CSV_FIELD_LIMIT = 16 * 2**20
csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


def gender_reason(value: str) -> str:
    """Reason code for a gender value that is not a clear male/female label."""
    if not value:
        return GENDER_BLANK
    if value in KNOWN_OTHER_GENDERS:
        return "gender_" + value.replace("-", "_")
    return GENDER_UNKNOWN


@dataclasses.dataclass(frozen=True)
class Clip:
    """One usable row of validated.tsv.

    Attributes:
      clip_id: ``<locale>/<path>``, unique across a release.
      audio_path: where the audio lives (local path or gs:// URL).
      speaker_id: the row's ``client_id``.
      label: features.MALE or features.FEMALE.
      locale: the locale directory's name.
      age: the row's age, "" when absent.
      accent: ``accent`` (<= 16.1) or ``accents`` (>= 17.0), "" when absent.
      augmentation: "" for a recorded clip; for an augmented train copy made
        by ``DecodeAudio``, the copy's spec tag (its ``clip_id`` then ends in
        ``#aug<k>``).
    """

    clip_id: str
    audio_path: str
    speaker_id: str
    label: int
    locale: str
    age: str = ""
    accent: str = ""
    augmentation: str = ""


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A row, clip or file that was not used, with its reason."""

    item: str
    reason: str
    detail: str = ""


def join(base: str, *parts: str) -> str:
    """Joins URL-ish paths (gs://...) and local paths with '/'."""
    return posixpath.join(base, *parts)


def locale_of(locale_dir: str) -> str:
    return posixpath.basename(locale_dir.rstrip("/"))


def iter_tsv_rows(text: str | IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, fields) of a Common Voice TSV, header included."""
    stream = io.StringIO(text) if isinstance(text, str) else text
    # newline handling is left to csv so CRLF and LF both work.
    reader = csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE, strict=False)
    yield from enumerate(reader, start=1)


def parse_validated_tsv(
    text: str | IO[str], locale_dir: str, include_unlabelled: bool = False
) -> Iterator[Clip | Rejection]:
    """Parses validated.tsv of one locale into clips and rejections.

    Args:
      text: the TSV's content or an open text stream.
      locale_dir: the locale directory (its basename is the locale).
      include_unlabelled: rows with a blank gender become Clips labelled
        ``features.UNLABELLED`` (for labelling them) instead of rejections.

    Yields:
      A ``Clip`` for every row with a clear male/female label, a ``Rejection``
      for every other row; one ``Rejection`` for the whole file if it lacks a
      required column.
    """
    # One pass, one row at a time, each check in the order a row can fail: kept in one function so
    # that every way a row becomes a rejection can be read top to bottom.
    locale = locale_of(locale_dir)
    tsv_path = join(locale_dir, VALIDATED_TSV)
    rows = iter_tsv_rows(text)
    try:
        _, header = next(rows)
    except StopIteration:
        yield Rejection(tsv_path, MISSING_COLUMNS, "the file is empty (no header row)")
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        yield Rejection(tsv_path, MISSING_COLUMNS, f"no column(s) {', '.join(missing)} in header")
        return
    index = {name: i for i, name in enumerate(header)}
    accent_column = "accents" if "accents" in index else "accent"

    def field(row: Sequence[str], name: str) -> str:
        i = index.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    for line_number, row in rows:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line, e.g. a trailing newline
        longest = max(len(f) for f in row)
        if longest > MAX_FIELD_CHARS:
            yield Rejection(f"{tsv_path}:{line_number}", MALFORMED_ROW,
                            f"line {line_number}: a field of {longest:,} characters (limit {MAX_FIELD_CHARS:,})")
            continue
        path = field(row, "path")
        if len(row) != len(header) or not path or not field(row, "client_id"):
            yield Rejection(
                f"{tsv_path}:{line_number}",
                MALFORMED_ROW,
                f"line {line_number}: {len(row)} fields, header has {len(header)}",
            )
            continue
        if escapes_clips_dir(path):
            yield Rejection(f"{tsv_path}:{line_number}", PATH_OUTSIDE_CLIPS,
                            f"line {line_number}: path {path[:200]!r} is not inside {CLIPS_DIR}/")
            continue
        gender = field(row, "gender").lower()
        unlabelled = include_unlabelled and not gender
        if gender not in GENDER_LABELS and not unlabelled:
            yield Rejection(f"{locale}/{path}", gender_reason(gender), f"gender={gender!r}")
            continue
        yield Clip(
            clip_id=f"{locale}/{path}",
            audio_path=join(locale_dir, CLIPS_DIR, path),
            speaker_id=field(row, "client_id"),
            label=features.UNLABELLED if unlabelled else GENDER_LABELS[gender],
            locale=locale,
            age=field(row, "age"),
            accent=field(row, accent_column),
        )


def escapes_clips_dir(path: str) -> bool:
    """True for a TSV path that is absolute, a URL or climbs out of ``clips/`` (``..``)."""
    if path.startswith(("/", "\\")) or "://" in path or (len(path) > 1 and path[1] == ":"):
        return True
    normal = posixpath.normpath(path.replace("\\", "/"))
    return normal == ".." or normal.startswith("../") or normal == "."


def parse_split_tsv(text: str | IO[str], locale_dir: str) -> Iterator[str]:
    """Yields the clip ids listed in an official split TSV (train/dev/test)."""
    locale = locale_of(locale_dir)
    rows = iter_tsv_rows(text)
    try:
        _, header = next(rows)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    if "path" not in header:
        return
    col = header.index("path")
    for _, row in rows:
        if len(row) > col and row[col].strip():
            yield f"{locale}/{row[col].strip()}"


def stable_fraction(*parts: str) -> float:
    """A uniform number in [0, 1) from strings, equal in every process.

    Python's ``hash`` is salted per process, so Beam workers would disagree;
    a cryptographic digest is stable everywhere.
    """
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def speaker_split(speaker_id: str, seed: int, fractions: Sequence[float]) -> str:
    """Assigns a speaker to a split by a seeded stable hash.

    Args:
      speaker_id: the client_id; all of a speaker's clips share a split.
      seed: changes the assignment.
      fractions: (train, validation, test) fractions summing to 1.

    Returns:
      One of features.SPLITS.
    """
    u = stable_fraction("split", str(seed), speaker_id)
    cumulative = 0.0
    for split, fraction in zip(features.SPLITS, fractions, strict=True):
        cumulative += fraction
        if u < cumulative:
            return split
    return features.SPLITS[-1]
