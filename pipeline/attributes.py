"""Per-clip attributes (emotion, recording condition, ...) for breaking results down.

An attribute TSV sits beside a corpus's ``validated.tsv`` (for instance the
``emotion.tsv`` of ``../shared/data/expressive/*``): a header with a ``path``
column naming the clip as ``validated.tsv`` does, and one column per
attribute. Every TSV in a locale directory that is not one of Common Voice's
own files and has a ``path`` column is read; identity columns (speaker,
client_id, sentence) are not attributes. Clips are keyed by the clip id the
Beam job writes, ``<locale directory name>/<path>``.

Used by ``model.evaluate``, ``benchmarks.robustness`` and
``benchmarks.expressive``; nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable

from pipeline import common_voice as cv

# Common Voice's own TSVs: never attribute tables.
COMMON_VOICE_TSVS = frozenset({
    "validated.tsv", "invalidated.tsv", "other.tsv", "reported.tsv", "train.tsv", "dev.tsv", "test.tsv",
    "clip_durations.tsv", "validated_sentences.tsv", "unvalidated_sentences.tsv",
})
PATH_COLUMN = "path"
IDENTITY_COLUMNS = frozenset({PATH_COLUMN, "speaker", "client_id", "sentence", "sentence_id"})

Attributes = dict[str, dict[str, str]]  # clip id -> {attribute name: value}


class AttributeTableError(ValueError):
    """An attribute TSV that cannot be read (names the file and the reason)."""


def locale_dirs(source: str) -> list[str]:
    """The locale directories of a ``--cv_dir`` source: the source itself or its subdirectories with a
    ``validated.tsv`` (local paths; a ``gs://`` source has none here)."""
    if os.path.isfile(os.path.join(source, cv.VALIDATED_TSV)):
        return [source]
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(source, "*", cv.VALIDATED_TSV)))


def attribute_tsvs(locale_dir: str) -> list[str]:
    """The attribute TSVs of one locale directory (sorted)."""
    found = []
    for path in sorted(glob.glob(os.path.join(locale_dir, "*.tsv"))):
        if os.path.basename(path) in COMMON_VOICE_TSVS:
            continue
        with open(path, encoding="utf-8", newline="") as f:
            header = f.readline().rstrip("\r\n").split("\t")
        if PATH_COLUMN in header:
            found.append(path)
    return found


def read_attribute_tsv(tsv_path: str) -> Attributes:
    """One attribute TSV: clip id -> its attributes (blank values are left out).

    Raises:
      AttributeTableError: no ``path`` column, or no attribute column.
    """
    locale = cv.locale_of(os.path.dirname(os.path.abspath(tsv_path)))
    with open(tsv_path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE, strict=False)
        header = [h.strip().lstrip("\ufeff") for h in next(rows, [])]
        if PATH_COLUMN not in header:
            raise AttributeTableError(f"{tsv_path}: no {PATH_COLUMN!r} column in its header {header}")
        names = [(i, h) for i, h in enumerate(header) if h and h not in IDENTITY_COLUMNS]
        if not names:
            raise AttributeTableError(f"{tsv_path}: no attribute column beside {sorted(IDENTITY_COLUMNS)}")
        key = header.index(PATH_COLUMN)
        table: Attributes = {}
        for row in rows:
            if len(row) <= key or not row[key].strip():
                continue
            values = {name: row[i].strip() for i, name in names if i < len(row) and row[i].strip()}
            table.setdefault(f"{locale}/{row[key].strip()}", {}).update(values)
    return table


def load_attributes(sources: Iterable[str], extra_tsvs: Iterable[str] = ()) -> Attributes:
    """Every attribute of the clips of ``sources`` (TSVs found beside their ``validated.tsv``) and of
    ``extra_tsvs`` (named explicitly; their folder is the locale). Later tables add to earlier ones."""
    merged: Attributes = {}
    paths = [t for s in sources for d in locale_dirs(s) for t in attribute_tsvs(d)] + list(extra_tsvs)
    for path in paths:
        for clip_id, values in read_attribute_tsv(path).items():
            merged.setdefault(clip_id, {}).update(values)
    return merged


def attribute_columns(attributes: Attributes, clip_ids: Iterable[str], missing: str = "(none)") -> dict[str, list]:
    """Attribute name -> its value for each of ``clip_ids`` in order (``missing`` where a clip has none);
    only attributes that at least one of the clips has."""
    clip_ids = list(clip_ids)
    names = sorted({name for c in clip_ids for name in attributes.get(c, {})})
    return {name: [attributes.get(c, {}).get(name, missing) for c in clip_ids] for name in names}
