"""Classifying audio files with an exported LiteRT model, without TensorFlow.

Importing TensorFlow takes seconds; this module needs only numpy, soundfile,
soxr and ``ai-edge-litert``, so ``predict`` starts fast. The model directory
is an ``export/`` of ``python -m model.train`` or the shipped pretrained
model: ``model.tflite`` + ``voicegender.json``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

from model.predict import calibration as calibration_lib
from model.predict.export_format import (
    CALIBRATION_KEY,
    EXPORT_METADATA,
    PRETRAINED_DIR,
    WHOLE_FILE_CALIBRATION_KEY,
    ModelDirError,
    load_export_info,
)
from pipeline import audio, features, frontend

# Long files are scored this many blocks per model call (15 s of log_mel
# audio): memory stays constant whatever the file's length. Measured with
# `predict` on a 30-minute 48 kHz WAV: peak RSS 85/100/132/193 MB for
# 8/16/32/64 blocks at the same speed (the LiteRT arena grows with the window).
WINDOW_BLOCKS = 16

T = TypeVar("T")

# The answer below --min_confidence (p_female is still given).
UNCERTAIN = "uncertain"


@dataclasses.dataclass
class Prediction:
    """One file's result: either a gender or an error."""

    path: str
    gender: str | None = None
    p_female: float | None = None
    duration_s: float | None = None
    speech_s: float | None = None  # seconds of detected speech the verdict rests on (None: the whole file's)
    error: str | None = None  # "<reason>: <detail>"
    reason: str | None = None  # the reason code alone (pipeline.audio's constants)

    @property
    def confidence(self) -> float | None:
        """max(p_female, 1 - p_female): how sure the verdict is (None for an error)."""
        return None if self.p_female is None else calibration_lib.confidence(self.p_female)

    def with_min_confidence(self, min_confidence: float) -> Prediction:
        """This prediction, its gender ``uncertain`` when the confidence is below ``min_confidence``."""
        if self.error is not None or self.confidence >= min_confidence:
            return self
        return dataclasses.replace(self, gender=UNCERTAIN)

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        record = {"path": self.path, "gender": self.gender, "p_female": round(self.p_female, 6),
                  "duration_s": round(self.duration_s, 3)}
        if self.speech_s is not None:
            record["speech_s"] = round(self.speech_s, 3)
        return record


def failure(path: str, reason: str, detail: str) -> Prediction:
    """A file that could not be classified, with its reason code."""
    return Prediction(path, error=f"{reason}: {detail}", reason=reason)


class Classifier:
    """A LiteRT gender classifier for waveforms and files.

    Args:
      model_dir: directory with ``model.tflite`` and ``voicegender.json``
        (default: the shipped pretrained model).
      num_threads: interpreter threads (1 keeps one core per process).

    Raises:
      ModelDirError: naming the missing, corrupt or inconsistent file.
    """

    def __init__(self, model_dir: str | None = None, num_threads: int = 1):
        self.model_dir = model_dir or PRETRAINED_DIR
        self._num_threads = num_threads
        self.info, self._litert_path = load_export_info(self.model_dir)
        self.feature_set = features.FeatureSet.from_dict(self.info["feature_set"])
        self.threshold = float(self.info.get("threshold", 0.5))
        self.calibration = self._calibration(CALIBRATION_KEY, calibration_lib.identity())
        self.whole_file_calibration = self._calibration(WHOLE_FILE_CALIBRATION_KEY, self.calibration)
        # One interpreter per thread: a LiteRT interpreter is not thread-safe.
        self._local = threading.local()
        self._runner()  # fails here, not on the first file, for a corrupt model

    def _calibration(self, key: str, default: calibration_lib.Calibration) -> calibration_lib.Calibration:
        if key not in self.info:
            return default
        try:
            return calibration_lib.Calibration.from_dict(self.info[key])
        except ValueError as e:
            raise ModelDirError(f"{os.path.join(self.model_dir, EXPORT_METADATA)}: {key}: {e}") from None

    def _runner(self):
        if not hasattr(self._local, "run"):
            from ai_edge_litert.interpreter import Interpreter

            try:
                interpreter = Interpreter(model_path=self._litert_path, num_threads=self._num_threads)
                self._local.run = interpreter.get_signature_runner()
            except (ValueError, RuntimeError) as e:
                raise ModelDirError(f"{self._litert_path}: not a LiteRT model ({str(e).splitlines()[0]})") from None
        return self._local.run

    def calibrated(self, p_female: float, whole_file: bool = False) -> float:
        """The model's mean p_female over speech (or, ``whole_file``, over every voiced block) mapped through
        the export's calibration of that verdict (identity when it has none)."""
        return float((self.whole_file_calibration if whole_file else self.calibration).apply(p_female))

    @property
    def sample_rate(self) -> int:
        return self.feature_set.sample_rate

    def block_probabilities(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-block ``p_female`` and voiced mask of a mono waveform at ``sample_rate``."""
        out = self._runner()(waveform=np.ascontiguousarray(waveform, dtype=np.float32))
        return out["p_female"], out["voiced"] > 0.5

    def classify_waveform(self, waveform: np.ndarray, path: str = "<waveform>") -> Prediction:
        """Classifies one clip; too-short, silent and non-finite clips come back as errors."""
        return self.classify_chunks([np.asarray(waveform, dtype=np.float32)], path)

    def classify_chunks(self, chunks: Iterable[np.ndarray], path: str = "<waveform>") -> Prediction:
        """Classifies a clip given as consecutive waveform chunks, in windows of ``WINDOW_BLOCKS`` blocks.

        Each window holds whole blocks plus the few samples its last block's
        frames need, so every block sees exactly the samples it would in one
        call over the whole clip. The silence rule compares each block with
        the clip's loudest, so it is applied at the end to every block's level
        (one number per block is kept, about 60 KB per hour of audio), in
        numpy: the rule this code's features module declares, even for an
        export whose graph was made under an older one.

        Raises:
          audio.AudioError: as the chunks' source raises it.
        """
        fs = self.feature_set
        step = WINDOW_BLOCKS * fs.block_samples
        span = step + fs.frame_length - fs.frame_step
        buffer = np.zeros(0, np.float32)
        windows: list[tuple[np.ndarray, np.ndarray]] = []
        samples = 0
        for chunk in chunks:
            samples += len(chunk)
            buffer = np.concatenate([buffer, chunk])
            while len(buffer) >= span:
                windows.append(self._score_window(buffer[:span]))
                buffer = buffer[step:]
        if len(buffer) >= fs.min_clip_samples:
            windows.append(self._score_window(buffer))
        if not windows:
            return self.too_short(path, samples)
        p = np.concatenate([w[0] for w in windows])
        voiced = frontend.block_is_voiced(np.concatenate([w[1] for w in windows]))
        if not voiced.any():
            return failure(path, audio.SILENT, f"all {len(p)} blocks are silent")
        return self.verdict(path, float(np.mean(p[voiced])), samples / self.sample_rate)

    def too_short(self, path: str, samples: int) -> Prediction:
        """The ``too_short`` failure of a file of ``samples`` samples (less than one block)."""
        rate, fs = self.sample_rate, self.feature_set
        return failure(path, audio.TOO_SHORT, f"{samples / rate:.2f} s, shorter than one block "
                                              f"({fs.min_clip_samples / rate:.2f} s)")

    def verdict(self, path: str, mean_p: float, duration_s: float, speech_s: float | None = None) -> Prediction:
        """A file's Prediction from the model's mean p_female over the blocks it rests on (then calibrated):
        its speech (``speech_s`` seconds of it), or with ``speech_s`` None every voiced block of the file."""
        if not np.isfinite(mean_p):  # a model with non-finite weights; never print NaN
            return failure(path, audio.NON_FINITE, f"the model's output is {mean_p} (is {self.model_dir} intact?)")
        p_female = self.calibrated(mean_p, whole_file=speech_s is None)
        gender = features.GENDER_NAMES[int(p_female >= self.threshold)]
        return Prediction(path, gender=gender, p_female=p_female, duration_s=duration_s, speech_s=speech_s)

    def _score_window(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_female, level in dBFS) of each whole block of ``waveform``."""
        p, _ = self.block_probabilities(waveform)
        spans = waveform[: len(p) * self.feature_set.block_samples].reshape(len(p), -1).astype(np.float64)
        return p, 10.0 * np.log10(np.mean(np.square(spans), axis=1) + 1e-12)

    def decode(self, path: str) -> np.ndarray:
        """Reads any libsndfile format, any rate, mono or stereo, to the model's rate, whole.

        Raises:
          audio.AudioError: missing, empty or undecodable file.
        """
        return audio.read_audio_file(path, self.sample_rate)

    def stream(self, path: str) -> Iterator[np.ndarray]:
        """A local file's waveform in chunks at the model's rate (see ``audio.stream_audio``).

        Raises:
          audio.AudioError: not a readable regular file, or as ``audio.stream_audio``.
        """
        audio.check_local_file(path)
        return audio.stream_audio(path, self.sample_rate, path)

    def classify_file(self, path: str) -> Prediction:
        """Decodes and classifies one file of any length in constant memory; never raises for a bad file."""
        try:
            return self.classify_chunks(self.stream(path), path)
        except audio.AudioError as e:
            return failure(path, e.reason, e.detail)


def map_in_order(fn: Callable[[str], T], paths: Iterable[str], workers: int, chunk: int) -> Iterator[T]:
    """``fn`` of each path on ``workers`` threads, at most ``chunk`` paths in flight, results in input order.

    Raises:
      ValueError: ``workers`` or ``chunk`` below 1.
    """
    if chunk < 1 or workers < 1:
        raise ValueError(f"chunk and workers must be >= 1, got chunk={chunk}, workers={workers}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        it = iter(paths)
        while batch := list(itertools.islice(it, chunk)):
            yield from pool.map(fn, batch)
