"""``predict``'s output: one record per file or per speaker, as a text table, JSON lines or CSV.

The record schemas (documented in the README and checked by
``tests/model/predict/test_predict.py``):

- file: ``path``, ``gender`` (``male``/``female``/``uncertain``),
  ``p_female``, ``duration_s``, ``speech_s`` (the speech the verdict rests
  on; absent with ``--vad=none``); or ``path``, ``error`` (``<reason>: <detail>``).
- speaker: ``speaker``, ``clips``, ``gender``, ``p_female``, ``agreement``.
- segment (``--segments``): ``path``, ``start_s``, ``end_s``, ``duration_s``,
  ``kind`` (``speech``/``silence``/``non_speech``), and for speech ``gender``
  and ``p_female``; or ``path``, ``error`` for a file that could not be read.
  With ``--format=rttm`` (segments only) each speech segment is the
  diarization standard's line ``SPEAKER <file> 1 <start> <duration> <NA> <NA>
  <gender> <NA> <NA>`` (the file id is its name without directory or
  extension, whitespace as ``_``); non-speech has no line, and a file that
  could not be read goes to stderr.

Every record is written and flushed as soon as it is known, so a long file
list streams. No NaN or inf is ever written (a non-finite result is an error
upstream).
"""

from __future__ import annotations

import csv
import json
import os
from typing import TextIO

from model.predict.calibration import confidence
from model.predict.classifier import UNCERTAIN, Prediction
from model.predict.pooling import PooledVerdict
from model.predict.segments import SPEECH, FileSegments

FORMATS = ("text", "jsonl", "csv", "rttm")
RTTM = "rttm"  # segments only: who (which gender) speaks when
FILE_FIELDS = ("path", "gender", "p_female", "duration_s", "speech_s", "error")
SPEAKER_FIELDS = ("speaker", "clips", "gender", "p_female", "agreement")
SEGMENT_FIELDS = ("path", "start_s", "end_s", "duration_s", "kind", "gender", "p_female", "error")
HEADERS = {
    "file": f"{'gender':<10}{'p_female':>9}{'seconds':>9}{'speech':>9}  path",
    "speaker": f"{'gender':<10}{'p_female':>9}{'clips':>7}{'agreement':>11}  speaker",
    "segment": f"{'start':>9}{'end':>9}  {'kind':<11}{'gender':<10}{'p_female':>9}  path",
}


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
      records: ``file``, ``speaker`` or ``segment`` (the header follows).

    Raises:
      ValueError: an unknown format or record kind.
    """

    def __init__(self, fmt: str, stream: TextIO, records: str = "file", errors: TextIO | None = None):
        if fmt not in FORMATS or records not in HEADERS:
            raise ValueError(f"unknown format {fmt!r} or records {records!r}; formats: {', '.join(FORMATS)}")
        if fmt == RTTM and records != "segment":
            raise ValueError("--format=rttm writes speech segments: add --segments")
        self._errors = errors
        self._fmt, self._stream = fmt, stream
        fields = {"file": FILE_FIELDS, "speaker": SPEAKER_FIELDS, "segment": SEGMENT_FIELDS}[records]
        self._csv = csv.DictWriter(stream, fields, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()
        elif fmt == "text":
            self._line(HEADERS[records])  # RTTM has no header

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
            self._line(f"{'ERROR':<10}{'':>9}{'':>9}{'':>9}  {prediction.path}  ({prediction.error})")
        else:
            speech = f"{prediction.speech_s:>9.1f}" if prediction.speech_s is not None else f"{'-':>9}"
            self._line(f"{prediction.gender:<10}{prediction.p_female:>9.3f}{prediction.duration_s:>9.1f}{speech}  "
                       f"{prediction.path}")

    def speaker(self, verdict: PooledVerdict, min_confidence: float = 0.0) -> None:
        """One speaker's pooled verdict."""
        record = speaker_record(verdict, min_confidence)
        if self._fmt != "text":
            self._record(record)
        else:
            self._line(f"{record['gender']:<10}{record['p_female']:>9.3f}{record['clips']:>7}"
                       f"{record['agreement']:>11.3f}  {record['speaker']}")

    def segments(self, result: FileSegments, min_confidence: float = 0.0) -> None:
        """One file's segments, in order (or its error); speech below ``min_confidence`` is ``uncertain``."""
        if self._fmt == RTTM:
            self._rttm(result, min_confidence)
            return
        if result.error is not None:
            if self._fmt == "text":
                self._line(f"{'ERROR':>9}{'':>9}  {'':<11}{'':<10}{'':>9}  {result.path}  ({result.error})")
            else:
                self._record({"path": result.path, "error": result.error})
            return
        for segment in result.segments:
            record = {"path": result.path, **segment.to_dict()}
            if "p_female" in record and confidence(record["p_female"]) < min_confidence:
                record["gender"] = UNCERTAIN
            if self._fmt != "text":
                self._record(record)
            else:
                p = f"{record['p_female']:>9.3f}" if "p_female" in record else f"{'':>9}"
                self._line(f"{record['start_s']:>9.2f}{record['end_s']:>9.2f}  {record['kind']:<11}"
                           f"{record.get('gender', ''):<10}{p}  {result.path}")

    def _rttm(self, result: FileSegments, min_confidence: float) -> None:
        if result.error is not None:
            if self._errors is not None:
                print(f"{result.path}: {result.error}", file=self._errors, flush=True)
            return
        file_id = rttm_file_id(result.path)
        for segment in result.segments:
            if segment.kind != SPEECH:
                continue
            gender = segment.gender if confidence(segment.p_female) >= min_confidence else UNCERTAIN
            self._line(f"SPEAKER {file_id} 1 {segment.start_s:.3f} {segment.duration_s:.3f} <NA> <NA> {gender} "
                       "<NA> <NA>")


def rttm_file_id(path: str) -> str:
    """RTTM's file id: the name without directory or extension, no whitespace (fields are space-separated)."""
    name = "_".join(os.path.splitext(os.path.basename(path))[0].split())
    return name or "recording"
