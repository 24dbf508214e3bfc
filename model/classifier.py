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
import json
import os

import numpy as np

from pipeline import audio, features

# The export's file names live here, in the TensorFlow-free module; model.export imports them.
EXPORT_DIRNAME = "export"  # <model_dir>/export of a training run
EXPORT_METADATA = "voicegender.json"  # features, labels, threshold
LITERT_FILENAME = "model.tflite"  # the LiteRT model (see model.export.export_litert)
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")


@dataclasses.dataclass
class Prediction:
    """One file's result: either a gender or an error."""

    path: str
    gender: str | None = None
    p_female: float | None = None
    duration_s: float | None = None
    error: str | None = None  # "<reason>: <detail>"
    reason: str | None = None  # the reason code alone (pipeline.audio's constants)

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "gender": self.gender, "p_female": round(self.p_female, 6),
                "duration_s": round(self.duration_s, 3)}


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
      FileNotFoundError: naming the missing file.
    """

    def __init__(self, model_dir: str | None = None, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.model_dir = model_dir or PRETRAINED_DIR
        paths = [os.path.join(self.model_dir, name) for name in (EXPORT_METADATA, LITERT_FILENAME)]
        for path in paths:
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: missing; --model_dir must be an export/ of model.train "
                                        "(with model.tflite) or the pretrained model directory")
        with open(paths[0], encoding="utf-8") as f:
            self.info = json.load(f)
        self.feature_set = features.FeatureSet.from_dict(self.info["feature_set"])
        self.threshold = float(self.info.get("threshold", 0.5))
        self._interpreter = Interpreter(model_path=paths[1], num_threads=num_threads)
        self._run = self._interpreter.get_signature_runner()

    @property
    def sample_rate(self) -> int:
        return self.feature_set.sample_rate

    def block_probabilities(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-block ``p_female`` and voiced mask of a mono waveform at ``sample_rate``."""
        out = self._run(waveform=np.ascontiguousarray(waveform, dtype=np.float32))
        return out["p_female"], out["voiced"] > 0.5

    def classify_waveform(self, waveform: np.ndarray, path: str = "<waveform>") -> Prediction:
        """Classifies one clip; too-short and silent clips come back as errors."""
        duration = len(waveform) / self.sample_rate
        if len(waveform) < self.feature_set.min_clip_samples:
            return failure(path, audio.TOO_SHORT, f"{duration:.2f} s, shorter than one block "
                                                  f"({self.feature_set.min_clip_samples / self.sample_rate:.2f} s)")
        p, voiced = self.block_probabilities(waveform)
        if not voiced.any():
            return failure(path, audio.SILENT, f"all {len(p)} blocks are silent")
        p_female = float(np.mean(p[voiced]))
        gender = features.GENDER_NAMES[int(p_female >= self.threshold)]
        return Prediction(path, gender=gender, p_female=p_female, duration_s=duration)

    def decode(self, path: str) -> np.ndarray:
        """Reads any libsndfile format, any rate, mono or stereo, to the model's rate.

        Raises:
          audio.AudioError: missing, empty or undecodable file.
        """
        return audio.read_audio_file(path, self.sample_rate)

    def classify_file(self, path: str) -> Prediction:
        """Decodes and classifies one file; never raises for a bad file."""
        try:
            waveform = self.decode(path)
        except audio.AudioError as e:
            return failure(path, e.reason, e.detail)
        return self.classify_waveform(waveform, path)


def read_file_list(path: str) -> list[str]:
    """Paths, one per line; blank lines and lines starting with # are skipped."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def resolve_model_dir(model_dir: str | None) -> str | None:
    """Accepts a training run's directory as well as its ``export/``."""
    if model_dir and not os.path.exists(os.path.join(model_dir, LITERT_FILENAME)):
        candidate = os.path.join(model_dir, EXPORT_DIRNAME)
        if os.path.exists(os.path.join(candidate, LITERT_FILENAME)):
            return candidate
    return model_dir


def classify_paths(classifier, paths: list[str], workers: int, chunk: int):
    """Yields one Prediction per path, in order; decoding runs ``workers`` files at a time."""
    def decode(path):
        try:
            return classifier.decode(path), None
        except audio.AudioError as e:
            return None, failure(path, e.reason, e.detail)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        it = iter(paths)
        while batch := list(itertools.islice(it, chunk)):
            for path, (waveform, failed) in zip(batch, pool.map(decode, batch), strict=True):
                yield failed or classifier.classify_waveform(waveform, path)
