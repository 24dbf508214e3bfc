"""The Python API: ``load()`` a model, then ``classify`` or ``segments`` a path or a waveform.

A thin face on ``model.predict`` (no TensorFlow): the same classifier, the
same speech detector and the same verdicts as ``voicegender predict``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from model.predict import classifier as classifier_lib
from model.predict import export_format, segments
from pipeline import audio

DEFAULT_VAD = "silero"  # predict's default: the verdict rests on the speech Silero finds


class ClassificationError(ValueError):
    """A recording that could not be classified; ``str(e)`` is the ``<reason>: <detail>`` predict prints.

    Attributes:
      path: the file (or ``<waveform>``).
      reason: the reason code (``too_short``, ``silent``, ``no_speech``, ``undecodable``, ``missing_file``, ...).
      detail: the explanation.
    """

    def __init__(self, path: str, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.path, self.reason, self.detail = path, reason, detail


@dataclasses.dataclass(frozen=True)
class Result:
    """One recording's verdict.

    Attributes:
      path: the file (or ``<waveform>``).
      gender: ``male`` or ``female``.
      p_female: the calibrated probability that the voice is female.
      duration_s: the recording's length.
      speech_s: the seconds of speech the verdict rests on (None with ``vad="none"``: every voiced block).
    """

    path: str
    gender: str
    p_female: float
    duration_s: float
    speech_s: float | None

    @property
    def confidence(self) -> float:
        """max(p_female, 1 - p_female)."""
        return max(self.p_female, 1.0 - self.p_female)


class VoiceGender:
    """A loaded model: ``classify`` and ``segments`` for paths and waveforms.

    Args:
      model_dir: an ``export/`` of ``voicegender train`` (or the run's directory); None: the shipped model.
      vad: the speech detector a verdict rests on (``silero``, ``webrtc``, ``energy``) or ``none`` (every
        voiced block of the file, for clips known to be speech only).
      num_threads: LiteRT interpreter threads.

    Raises:
      ValueError: an unknown ``vad``; ``export_format.ModelDirError`` for a missing or corrupt model directory.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, vad: str = DEFAULT_VAD, num_threads: int = 1):
        if vad not in segments.VERDICT_METHODS:
            raise ValueError(f"vad={vad!r}; choose one of {', '.join(segments.VERDICT_METHODS)}")
        self.vad = vad
        self.classifier = classifier_lib.Classifier(export_format.resolve_model_dir(
            os.fspath(model_dir) if model_dir is not None else None), num_threads=num_threads)

    @property
    def sample_rate(self) -> int:
        """The model's rate; waveforms at any other rate are resampled."""
        return self.classifier.sample_rate

    def classify(self, recording: str | os.PathLike | np.ndarray, sample_rate: int | None = None) -> Result:
        """The gender of one recording: a path (any format libsndfile reads, any length) or a waveform.

        Args:
          recording: a file path, or samples as a float array ``[samples]`` or ``[samples, channels]``.
          sample_rate: the waveform's rate (required for a waveform, ignored for a path).

        Raises:
          ClassificationError: the recording cannot be classified (the reason ``predict`` gives).
        """
        path, chunks = self._source(recording, sample_rate)
        if self.vad == segments.WHOLE_FILE:
            prediction = (self.classifier.classify_file(path) if chunks is None
                          else self._guard(path, lambda: self.classifier.classify_chunks(chunks, path)))
        else:
            prediction = segments.speech_verdict(self.classifier, path, segments.SegmentConfig(method=self.vad),
                                                 chunks)
        if prediction.error is not None:
            raise ClassificationError(path, prediction.reason, prediction.error.split(": ", 1)[-1])
        return Result(path, prediction.gender, prediction.p_female, prediction.duration_s, prediction.speech_s)

    def segments(self, recording: str | os.PathLike | np.ndarray,
                 sample_rate: int | None = None) -> list[segments.Segment]:
        """The recording cut into speech segments (with gender and p_female) and non-speech (silence, noise,
        music: no gender), in time order, as ``voicegender predict --segments`` prints them.

        Raises:
          ClassificationError: the recording cannot be read; ``ValueError`` with ``vad="none"``.
        """
        if self.vad == segments.WHOLE_FILE:
            raise ValueError("segments need a speech detector; load(vad='silero') (or webrtc, energy)")
        path, chunks = self._source(recording, sample_rate)
        result = segments.segment_file(self.classifier, path, segments.SegmentConfig(method=self.vad), chunks)
        if result.error is not None:
            reason, _, detail = result.error.partition(": ")
            raise ClassificationError(path, reason, detail)
        return list(result.segments)

    def _source(self, recording, sample_rate: int | None):
        """(name, None) for a path (streamed by the classifier); ("<waveform>", chunks at the model's rate)."""
        if isinstance(recording, str | os.PathLike):
            return os.fspath(recording), None
        return "<waveform>", waveform_chunks(recording, sample_rate, self.sample_rate)

    @staticmethod
    def _guard(path: str, classify):
        try:
            return classify()
        except audio.AudioError as e:
            return classifier_lib.failure(path, e.reason, e.detail)


def waveform_chunks(samples: np.ndarray, sample_rate: int | None, model_rate: int):
    """A waveform as mono float32 chunks at ``model_rate`` (10 s each), as the file reader yields them.

    Raises:
      ClassificationError: no ``sample_rate``, an array that is not 1-D or 2-D, or inf/NaN samples.
    """
    name = "<waveform>"
    if sample_rate is None or sample_rate < audio.MIN_SOURCE_RATE:
        raise ClassificationError(name, audio.UNDECODABLE, f"a waveform needs its sample_rate (>= "
                                                           f"{audio.MIN_SOURCE_RATE} Hz), got {sample_rate}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[1] == 0):
        raise ClassificationError(name, audio.UNDECODABLE, f"a waveform is [samples] or [samples, channels], "
                                                           f"got shape {samples.shape}")
    finite = np.isfinite(samples).all(axis=1) if samples.ndim == 2 else np.isfinite(samples)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise ClassificationError(name, audio.NON_FINITE, f"inf or NaN samples, the first at "
                                                          f"{first / sample_rate:.2f} s")
    mono = audio.downmix(samples if samples.ndim == 2 else samples[:, None])
    if len(mono) == 0:
        raise ClassificationError(name, audio.NO_AUDIO, "the waveform holds 0 samples")
    if sample_rate != model_rate:
        import soxr

        mono = soxr.resample(mono, sample_rate, model_rate, quality="HQ").astype(np.float32)
    step = int(audio.STREAM_CHUNK_SECONDS * model_rate)
    return (mono[i: i + step] for i in range(0, len(mono), step))


def load(model_dir: str | os.PathLike | None = None, vad: str = DEFAULT_VAD, num_threads: int = 1) -> VoiceGender:
    """Loads a model for ``classify`` and ``segments``: the shipped one by default (see ``VoiceGender``)."""
    return VoiceGender(model_dir, vad, num_threads)
