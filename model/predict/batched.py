"""Many files' verdicts with their speech detection batched across them (predict's default verdict).

Labelling thousands of short clips is bounded by Silero: one model call per
32 ms window costs ~80 us for one stream and ~33 us per stream from 16
streams on (16 kHz, one core). So a group of files is read first, the speech
detection of all of them runs as one lockstep batch
(``vad.silero_probabilities_many``: each file's probabilities are those it
gets alone), then each file is segmented and classified as
``segments.speech_verdict`` would alone. A file as long as the segmenter's
window (60 s) or longer is streamed alone, as before.

Memory: at most ``budget_s`` seconds of decoded short files wait for their
batch, plus one window of a long file; never the group's total length.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from model.predict import segments, vad
from model.predict.classifier import Prediction, failure
from pipeline import audio

BATCHED_METHODS = ("silero",)  # detectors with a per-window model call, which batching makes cheaper
BUDGET_S = 120.0  # decoded audio held for one batch (7.7 MB at 16 kHz float32)


def _read_head(classifier, path: str, window: int) -> tuple[np.ndarray, Iterator[np.ndarray] | None] | Prediction:
    """A file's first ``window`` samples or all of them, with the rest of its stream when there is more."""
    try:
        stream = classifier.stream(path)
        chunks, samples = [], 0
        for chunk in stream:
            chunks.append(chunk)
            samples += len(chunk)
            if samples >= window:
                return np.concatenate(chunks), stream
    except audio.AudioError as e:
        return failure(path, e.reason, e.detail)
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), None


def speech_verdicts(classifier, paths: Sequence[str], config: segments.SegmentConfig,
                    budget_s: float = BUDGET_S) -> list[Prediction]:
    """``segments.speech_verdict`` of each path, in order, the short files' speech detection batched.

    Never raises for a bad file (its Prediction carries the reason).
    """
    results: list[Prediction | None] = [None] * len(paths)
    rate = classifier.sample_rate
    window, budget = round(config.window_s * rate), budget_s * rate
    waiting: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        frames = speech_frames_many([wave for _, wave in waiting], config.method, rate,
                                    **config.vad_options())
        for (i, wave), mask in zip(waiting, frames, strict=True):
            results[i] = segments.speech_verdict(classifier, paths[i], config, chunks=[wave], frames=mask)
        waiting.clear()

    for i, path in enumerate(paths):
        head = _read_head(classifier, path, window)
        if isinstance(head, Prediction):
            results[i] = head
            continue
        wave, rest = head
        if rest is not None:  # a long file: streamed alone, its first window handed back first
            results[i] = segments.speech_verdict(classifier, path, config, chunks=_chain(wave, rest))
            continue
        waiting.append((i, wave))
        if sum(len(w) for _, w in waiting) >= budget:
            flush()
    if waiting:
        flush()
    return results


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def speech_frames_many(waveforms: Sequence[np.ndarray], method: str, sample_rate: int,
                       threshold: float | None = None) -> list[np.ndarray]:
    """``vad.speech_frames`` of each waveform (Silero's ``threshold``, else its default); Silero's batched."""
    options = {} if threshold is None else {"threshold": threshold}
    if method not in BATCHED_METHODS:
        return [vad.speech_frames(w, method, sample_rate, **options) for w in waveforms]
    probs = vad.silero_probabilities_many(waveforms, sample_rate)
    return [vad.silero_frames(p, len(w), sample_rate, **options) for p, w in zip(probs, waveforms, strict=True)]


def is_batched(method: str, segmented: bool) -> bool:
    """Whether ``group_function`` batches across files (verdicts over Silero's speech; segments stream alone)."""
    return not segmented and method in BATCHED_METHODS


def groups(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    """``paths`` in consecutive lists of ``size`` (the last may be shorter), read lazily."""
    it = iter(paths)
    while group := list(itertools.islice(it, size)):
        yield group


def group_function(classifier, method: str, segmented: bool) -> Callable[[Sequence[str]], list]:
    """What ``predict`` runs on each group of paths: their results in order (see ``segments.file_function``);
    the default verdict's speech detection batched across the group."""
    if not is_batched(method, segmented):
        fn = segments.file_function(classifier, method, segmented)
        return lambda paths: [fn(path) for path in paths]
    config = segments.SegmentConfig(method=method)
    return lambda paths: speech_verdicts(classifier, paths, config)
