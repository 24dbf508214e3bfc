"""``predict``'s output: one record per file or per speaker, as a text table, JSON lines or CSV.

The record schemas (documented in the README and checked by
``tests/model/test_predict.py``):

- file: ``path``, ``gender`` (``male``/``female``/``uncertain``),
  ``p_female``, ``duration_s``; or ``path``, ``error`` (``<reason>: <detail>``).
- speaker: ``speaker``, ``clips``, ``gender``, ``p_female``, ``agreement``.

Every record is written and flushed as soon as it is known, so a long file
list streams. No NaN or inf is ever written (a non-finite result is an error
upstream).
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from model.classifier import UNCERTAIN, Prediction
from model.pooling import PooledVerdict

FORMATS = ("text", "jsonl", "csv")
FILE_FIELDS = ("path", "gender", "p_female", "duration_s", "error")
SPEAKER_FIELDS = ("speaker", "clips", "gender", "p_female", "agreement")


def speaker_record(verdict: PooledVerdict, min_confidence: float = 0.0) -> dict:
    """The JSON-safe record of one speaker's pooled verdict."""
    gender = verdict.gender if verdict.confidence >= min_confidence else UNCERTAIN
    return {"speaker": verdict.speaker, "clips": verdict.clips, "gender": gender,
            "p_female": round(verdict.p_female, 6), "agreement": round(verdict.agreement, 4)}


class Writer:
    """Writes records in one of ``FORMATS`` to ``stream``.

    Args:
      fmt: ``text``, ``jsonl`` or ``csv``.
      stream: where to write (stdout).
      speakers: the records are speakers (the header says so), not files.

    Raises:
      ValueError: an unknown format.
    """

    def __init__(self, fmt: str, stream: TextIO, speakers: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
        self._fmt, self._stream = fmt, stream
        fields = SPEAKER_FIELDS if speakers else FILE_FIELDS
        self._csv = csv.DictWriter(stream, fields, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()
        elif fmt == "text":
            header = (f"{'gender':<10}{'p_female':>9}{'clips':>7}{'agreement':>11}  speaker" if speakers
                      else f"{'gender':<10}{'p_female':>9}{'seconds':>9}  path")
            self._line(header)

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def _record(self, record: dict) -> None:
        if self._fmt == "jsonl":
            self._line(json.dumps(record, allow_nan=False))
        else:
            self._csv.writerow(record)
            self._stream.flush()

    def file(self, prediction: Prediction) -> None:
        """One file's result (its gender may already be ``uncertain``)."""
        if self._fmt != "text":
            self._record(prediction.to_dict())
        elif prediction.error is not None:
            self._line(f"{'ERROR':<10}{'':>9}{'':>9}  {prediction.path}  ({prediction.error})")
        else:
            self._line(f"{prediction.gender:<10}{prediction.p_female:>9.3f}{prediction.duration_s:>9.1f}  "
                       f"{prediction.path}")

    def speaker(self, verdict: PooledVerdict, min_confidence: float = 0.0) -> None:
        """One speaker's pooled verdict."""
        record = speaker_record(verdict, min_confidence)
        if self._fmt != "text":
            self._record(record)
        else:
            self._line(f"{record['gender']:<10}{record['p_female']:>9.3f}{record['clips']:>7}"
                       f"{record['agreement']:>11.3f}  {record['speaker']}")
