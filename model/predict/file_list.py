"""``predict``'s ``--file_list``: a plain list of paths, or a TSV with a ``path`` column.

Read lazily, one line at a time, so a list of millions of files is never
held in memory. A TSV (a Common Voice ``validated.tsv``, say) carries other
columns along, so ``--speaker_from=client_id`` can name a speaker column.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping

from pipeline import audio

PATH_COLUMN = "path"


class FileListError(ValueError):
    """A ``--file_list`` that cannot be read, with the reason."""


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One audio file to classify, and its TSV row when the list is a TSV."""

    path: str
    fields: Mapping[str, str] | None = None


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of a UTF-8 file, decoded line by line so an error names its line."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise FileListError(f"--file_list {path}: line {number} is not UTF-8 "
                                    f"(byte 0x{e.object[e.start]:02x}); save the list as UTF-8") from None


def _tsv_audio_dir(list_path: str) -> str:
    """Where a TSV's relative paths live: ``clips/`` beside it (the Common Voice layout), else its folder."""
    folder = os.path.dirname(os.path.abspath(list_path))
    clips = os.path.join(folder, "clips")
    return clips if os.path.isdir(clips) else folder


def iter_file_entries(path: str) -> Iterator[FileEntry]:
    """The files of a ``--file_list``, lazily.

    A plain list has one path per line (blank and ``#`` lines skipped). A
    list whose first line holds tab-separated column names including
    ``path`` is a TSV: each row's relative ``path`` is taken inside
    ``clips/`` beside the TSV (or the TSV's folder), and the row's fields
    come along in ``FileEntry.fields``.

    Raises:
      FileListError: the list is missing, unreadable, not a regular file,
        not UTF-8 (naming the line), or a TSV row has fewer columns than the
        header, when the iterator reaches the problem.
    """
    try:
        audio.check_local_file(path)
    except audio.AudioError as e:
        raise FileListError(f"--file_list {e.detail}") from None
    header: list[str] | None = None
    audio_dir = ""
    for number, line in _lines(path):
        if number == 1 and "\t" in line and PATH_COLUMN in line.split("\t"):
            header, audio_dir = line.split("\t"), _tsv_audio_dir(path)
            continue
        if header is None:
            line = line.strip()
            if line and not line.startswith("#"):
                yield FileEntry(line)
            continue
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) < len(header):
            raise FileListError(f"--file_list {path}: line {number} has {len(values)} fields, the header "
                                f"{len(header)}")
        fields = dict(zip(header, values, strict=False))
        yield FileEntry(os.path.join(audio_dir, fields[PATH_COLUMN]), fields)
