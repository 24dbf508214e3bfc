"""``voicegender predict``'s typed config: the one declaration of its settings (its flags derive from it)."""

from __future__ import annotations

import dataclasses
import os

from model.predict import output
from model.predict import segments as segments_lib
from pipeline import config_flags


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """How ``predict`` classifies and reports its files (the files themselves are positional arguments).

    Attributes:
      model_dir: a model.train run (or its export/); default: the shipped pretrained model.
      format: text: a table; jsonl: one JSON object per line; csv; rttm: the diarization standard's
        SPEAKER lines, one per speech segment labelled with its gender (with --segments).
      file_list: a file with one audio path per line, or a TSV with a `path` column (relative paths are
        taken in clips/ beside it); added after the positional files.
      min_confidence: below this max(p_female, 1 - p_female), the answer is 'uncertain'.
      speaker_from: pool the files by speaker: a column of the TSV --file_list (e.g. client_id), or a
        regular expression whose group is the speaker id in the path (e.g. '([^/]+)/[^/]+$': the parent
        folder). Prints one verdict per speaker.
      segments: cut each file into speech segments (start, end, gender, p_female) and non-speech regions
        (silence, noise, music: no gender), one record each.
      vad: the speech detector (see model/predict/vad.py; silero: the most accurate, and the only one that
        refuses music, measured by benchmarks.vad). A file's verdict rests on its speech only; 'none': on
        every non-silent block of the file (about 2.5x faster; for clips known to hold speech only; not
        with --segments).
      decode_workers: files decoded and classified in parallel, in threads (with --jobs=1).
      jobs: worker processes, each with its own model, one file at a time (results still come in input
        order); 1: this process, with --decode_workers threads.
      chunk: files in flight at once (results still come in input order).
      batch: files whose speech detection runs as one batch, for the default verdict (Silero; each
        file's result is the same whatever the batch; measured in benchmarks.inference).
    """

    model_dir: str | None = None
    format: str = dataclasses.field(default="text", metadata=config_flags.flag_options(choices=output.FORMATS))
    file_list: str | None = None
    min_confidence: float = 0.0
    speaker_from: str | None = None
    segments: bool = False
    vad: str = dataclasses.field(default="silero", metadata=config_flags.flag_options(choices=segments_lib.VERDICT_METHODS))
    decode_workers: int = min(8, os.cpu_count() or 1)
    jobs: int = 1
    chunk: int = 64
    batch: int = 16

    def __post_init__(self):
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"--min_confidence must be in [0, 1], got {self.min_confidence}")
        for name in ("decode_workers", "jobs", "chunk", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.format == output.RTTM and not self.segments:
            raise ValueError("--format=rttm writes speech segments: add --segments")
        if self.segments and self.vad == segments_lib.WHOLE_FILE:
            raise ValueError(f"--segments needs a speech detector; --vad={segments_lib.WHOLE_FILE} has none")
