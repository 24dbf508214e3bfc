"""Reading Common Voice release TSVs: both schemas, every real-world quirk.

Pure Python (no Beam), so it is easy to test and reuse. Common Voice TSVs are
UTF-8, tab-separated, one header row, never quoted (sentences contain quote
characters, so they are read with ``QUOTE_NONE``), with LF or CRLF endings.
Up to 16.1 the gender column holds male/female/other and accents are in
``accent``; from 17.0 it holds male_masculine, female_feminine, intersex,
transgender, non-binary or do_not_wish_to_say and accents are in ``accents``.
"""

from __future__ import annotations

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
# characters; a longer one makes its row malformed. A line is read with a
# bound, so a file without newlines (or a huge one) costs one line's memory,
# never the file's: the rest of an over-long line is skipped and the row
# rejected alone.
MAX_FIELD_CHARS = 65_536
MAX_LINE_BYTES = 2**20
UNREADABLE_TSV = "unreadable_tsv"  # a whole TSV that cannot be read (its rows are lost; the other locales go on)
CONFLICTING_GENDER = "conflicting_gender"  # one clip listed twice with two genders: both rows are refused
DUPLICATE_CLIP = "duplicate_clip"  # one clip listed twice with the same gender: the first row is kept


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


@dataclasses.dataclass(frozen=True)
class TsvLine:
    """One line of a TSV: its fields, or why it cannot be read.

    Attributes:
      number: the 1-based line number.
      fields: the tab-separated fields (empty when ``problem`` is set).
      problem: why the line cannot be used (not UTF-8, over ``MAX_LINE_BYTES``), else "".
    """

    number: int
    fields: list[str]
    problem: str = ""


def _bounded_lines(stream: IO) -> Iterator[tuple[str | bytes, int]]:
    """(line, 0) for each line of ``stream``, or (empty, its length) for one over ``MAX_LINE_BYTES``.

    ``readline`` with a limit never holds more than one bounded piece of a
    line, whatever the file holds (a 20 GB file without a newline is read in
    1 MiB pieces and comes out as one over-long line).
    """
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        newline = "\n" if isinstance(line, str) else b"\n"
        if len(line) <= MAX_LINE_BYTES or line.endswith(newline):
            yield line, 0
            continue
        length = len(line)
        while True:  # skip the rest of the over-long line, piece by piece
            piece = stream.readline(MAX_LINE_BYTES)
            length += len(piece)
            if not piece or piece.endswith(newline):
                break
        yield line[:0], length


def iter_tsv_rows(text: str | IO) -> Iterator[TsvLine]:
    """The lines of a Common Voice TSV, header included, each a ``TsvLine``.

    Args:
      text: the TSV's content, a text stream, or a binary stream (each line
        decoded as UTF-8 on its own, so one bad byte costs one row, not the file).
    """
    stream = io.StringIO(text) if isinstance(text, str) else text
    # Common Voice never quotes (sentences hold quote characters), so a row is its line split on tabs.
    for number, (line, over) in enumerate(_bounded_lines(stream), start=1):
        if over:
            yield TsvLine(number, [], f"line {number}: {over:,} bytes long, over the {MAX_LINE_BYTES:,} a row may have")
            continue
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield TsvLine(number, [], f"line {number}: not UTF-8 text (byte 0x{line[e.start]:02x} at column "
                                          f"{e.start + 1})")
                continue
        yield TsvLine(number, line.rstrip("\r\n").split("\t"))


def _header(lines: Iterator[TsvLine], tsv_path: str, required: Sequence[str]) -> list[str] | Rejection:
    """The header's column names, or the one ``Rejection`` of a file without a usable header.

    An empty file, a header that cannot be read (not UTF-8, over the line
    limit) or one without a ``required`` column loses the whole file, and says which.
    """
    first = next(lines, None)
    if first is None:
        return Rejection(tsv_path, MISSING_COLUMNS, "the file is empty (no header row)")
    if first.problem:
        return Rejection(tsv_path, UNREADABLE_TSV, f"the header: {first.problem}")
    header = [h.strip().lstrip("\ufeff") for h in first.fields]
    missing = [c for c in required if c not in header]
    if missing:
        return Rejection(tsv_path, MISSING_COLUMNS, f"no column(s) {', '.join(missing)} in header "
                                                    f"(it has {', '.join(header[:12])[:300]})")
    return header


def parse_validated_tsv(
    text: str | IO, locale_dir: str, include_unlabelled: bool = False
) -> Iterator[Clip | Rejection]:
    """Parses validated.tsv of one locale into clips and rejections, one line at a time.

    Args:
      text: the TSV's content, or an open text or binary stream (read
        streaming: memory is one line, whatever the file's size).
      locale_dir: the locale directory (its basename is the locale).
      include_unlabelled: rows with a blank gender become Clips labelled
        ``features.UNLABELLED`` (for labelling them) instead of rejections; a
        TSV without a gender column is then all unlabelled.

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
    required = [c for c in REQUIRED_COLUMNS if not (include_unlabelled and c == "gender")]
    header = _header(rows, tsv_path, required)
    if isinstance(header, Rejection):
        yield header
        return
    index = {name: i for i, name in enumerate(header)}
    accent_column = "accents" if "accents" in index else "accent"

    def field(row: Sequence[str], name: str) -> str:
        i = index.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    for line in rows:
        where = f"{tsv_path}:{line.number}"
        if line.problem:
            yield Rejection(where, MALFORMED_ROW, line.problem)
            continue
        row = line.fields
        if len(row) == 1 and not row[0].strip():
            continue  # blank line, e.g. a trailing newline
        longest = max(len(f) for f in row)
        if longest > MAX_FIELD_CHARS:
            yield Rejection(where, MALFORMED_ROW,
                            f"line {line.number}: a field of {longest:,} characters (limit {MAX_FIELD_CHARS:,})")
            continue
        if len(row) != len(header):
            yield Rejection(where, MALFORMED_ROW, f"line {line.number}: {len(row)} fields, header has {len(header)}")
            continue
        empty = [name for name in ("client_id", "path") if not field(row, name)]
        if empty:
            yield Rejection(where, MALFORMED_ROW, f"line {line.number}: the {' and '.join(empty)} field"
                                                  f"{'s are' if len(empty) > 1 else ' is'} empty")
            continue
        path = field(row, "path")
        if escapes_clips_dir(path):
            yield Rejection(where, PATH_OUTSIDE_CLIPS,
                            f"line {line.number}: path {path[:200]!r} is not inside {CLIPS_DIR}/")
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


def parse_split_tsv(text: str | IO, locale_dir: str, name: str = "train.tsv") -> Iterator[str | Rejection]:
    """The clip ids an official split TSV (``name``: train/dev/test.tsv) lists, streaming; a ``Rejection`` for
    the whole file without a ``path`` column, and for each line that cannot be read."""
    locale = locale_of(locale_dir)
    tsv_path = join(locale_dir, name)
    rows = iter_tsv_rows(text)
    header = _header(rows, tsv_path, ("path",))
    if isinstance(header, Rejection):
        yield header
        return
    col = header.index("path")
    for line in rows:
        if line.problem:
            yield Rejection(f"{tsv_path}:{line.number}", MALFORMED_ROW, line.problem)
        elif len(line.fields) > col and line.fields[col].strip():
            yield f"{locale}/{line.fields[col].strip()}"


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
