"""Cutting a recording into speech segments, each with a gender, and non-speech regions with none.

A speech detector (``model.predict.vad``) marks speech on a 10 ms grid; pauses
shorter than ``min_pause_s`` are bridged, so a segment is a stretch of talk
between pauses. Each speech segment is classified on its own samples only
(the LiteRT model's per-block p_female, averaged over the segment's blocks;
a segment shorter than one block is classified on the block centred on it),
so a turn never borrows evidence from its neighbours. Consecutive speech
segments of the same gender separated by less than ``merge_gap_s`` are then
joined (one speaker's turn with pauses in it). Non-speech regions are listed
as ``silence`` (below the silence floor) or ``non_speech`` (noise, music).

The file is read as a stream: the detector runs on windows of
``window_s`` seconds, segments that ended inside a window are emitted, and
only the open tail is carried on, so memory is bounded by the window, not the
file. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from model.predict import smoothing, vad
from model.predict.classifier import Prediction, failure
from pipeline import audio, features

WHOLE_FILE = "none"  # file_classifier's method without speech detection: every voiced block of the file
VERDICT_METHODS = (*vad.METHODS, WHOLE_FILE)  # predict's --vad: what a file's verdict rests on
SPEECH = "speech"
SILENCE = "silence"
NON_SPEECH = "non_speech"


class NonFiniteOutputError(ValueError):
    """The model answered NaN or inf for a segment (a broken model; never printed as a number)."""


@dataclasses.dataclass(frozen=True)
class SegmentConfig:
    """How a recording is segmented.

    Attributes:
      method: the speech detector (``model.predict.vad.METHODS``).
      min_speech_s: shorter speech is dropped (clicks, coughs).
      min_pause_s: shorter pauses are bridged (breaths inside a sentence).
      merge_gap_s: same-gender speech segments closer than this are joined.
      window_s: seconds of audio the detector sees at once (bounds memory).
      max_segment_s: a stretch of talk without a pause is cut after this long.
      turn_switch_prob: inside a stretch of talk, the probability that the
        gender changes between two blocks (0.96 s each) in the two-state
        HMM whose Viterbi path decides the turns (``smoothing``); lower
        holds a turn through odd blocks, 0.5 decides each block alone.
        Chosen with benchmarks.segments.
      pad_s: the speech found is widened by this much on each side before
        pauses are bridged (Silero's own ``speech_pad_ms`` is 30 ms): the soft
        onsets and endings a detector misses, for the price of pause time
        given a gender. 0 was chosen with benchmarks.segments (WORKSPACE.md).
      speech_threshold: Silero only: the window probability that starts
        speech; it lasts until one below ``speech_threshold - 0.15``
        (Silero's own hysteresis). Chosen with benchmarks.segments.
    """

    method: str = "silero"
    min_speech_s: float = 0.25
    min_pause_s: float = 0.15
    merge_gap_s: float = 1.0
    window_s: float = 60.0
    max_segment_s: float = 30.0
    turn_switch_prob: float = 0.01
    speech_threshold: float = 0.5
    pad_s: float = 0.0

    def __post_init__(self):
        if self.method not in vad.METHODS:
            raise ValueError(f"unknown speech detection method {self.method!r}; choose one of "
                             f"{', '.join(vad.METHODS)}")
        if not 0.0 < self.turn_switch_prob <= 0.5:
            raise ValueError(f"turn_switch_prob must be in (0, 0.5], got {self.turn_switch_prob}")
        if not 0.0 <= self.pad_s <= 1.0:
            raise ValueError(f"pad_s must be in [0, 1] seconds, got {self.pad_s}")
        if not vad.SILERO_HYSTERESIS <= self.speech_threshold <= 1.0:
            raise ValueError(f"speech_threshold must be in [{vad.SILERO_HYSTERESIS}, 1], got {self.speech_threshold}")
        if not 0 < self.max_segment_s < self.window_s:
            raise ValueError(f"max_segment_s ({self.max_segment_s}) must be > 0 and below window_s "
                             f"({self.window_s})")

    def vad_options(self) -> dict:
        """Keyword options of ``vad.speech_frames`` for this method (the threshold is Silero's alone)."""
        return {"threshold": self.speech_threshold} if self.method == "silero" else {}


@dataclasses.dataclass(frozen=True)
class Segment:
    """One stretch of a recording: speech with its gender, or non-speech without one."""

    start_s: float
    end_s: float
    kind: str  # SPEECH, SILENCE or NON_SPEECH
    gender: str | None = None
    p_female: float | None = None
    # The model's raw (uncalibrated) p_female summed over the blocks this speech rests on, and their number:
    # a file's verdict averages blocks, as the calibration was fitted on (not calibrated segment values).
    block_sum: float = dataclasses.field(default=0.0, repr=False, compare=False)
    blocks: int = dataclasses.field(default=0, repr=False, compare=False)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        record = {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                  "duration_s": round(self.duration_s, 3), "kind": self.kind}
        if self.kind == SPEECH:
            record.update(gender=self.gender, p_female=round(self.p_female, 6))
        return record


def _level_dbfs(samples: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-12)) if len(samples) else -120.0


class Segmenter:
    """Segments waveform streams with one classifier (``model.predict.classifier.Classifier``) and one config."""

    def __init__(self, classifier, config: SegmentConfig = SegmentConfig()):
        self._classifier = classifier
        self.config = config
        self.rate = classifier.sample_rate
        self._block = classifier.feature_set.min_clip_samples  # the fewest samples that make one whole block

    def block_p(self, samples: np.ndarray, context: np.ndarray, start: int) -> np.ndarray:
        """Per-block p_female of ``samples`` (``context[start:start+len]``); short ones get the centred block.

        Raises:
          NonFiniteOutputError: the model answered NaN or inf.
        """
        if len(samples) < self._block:
            centre = start + len(samples) // 2
            lo = max(0, min(centre - self._block // 2, len(context) - self._block))
            samples = context[lo: lo + self._block]
            if len(samples) < self._block:  # the whole recording is shorter than a block
                samples = np.pad(samples, (0, self._block - len(samples)))
        p, _ = self._classifier.block_probabilities(samples)
        if not np.all(np.isfinite(p)):
            raise NonFiniteOutputError(f"the model's output is not finite: is {self._classifier.model_dir} intact?")
        return np.asarray(p, np.float64)

    def _turn_starts(self, p: np.ndarray) -> list[int]:
        """Block indices where another speaker's turn starts inside one stretch of talk (``smoothing``)."""
        return smoothing.turn_starts(p, self._classifier.threshold, self.config.turn_switch_prob)

    def _quietest(self, samples: np.ndarray, around: int) -> int:
        """The sample index of the quietest 50 ms within +-0.6 s of ``around``: where a turn most likely changed."""
        hop, reach = int(0.05 * self.rate), int(0.6 * self.rate)
        lo, hi = max(0, around - reach), min(len(samples), around + reach)
        frames = (hi - lo) // hop
        if frames < 2:
            return around
        energy = np.square(samples[lo: lo + frames * hop].astype(np.float64)).reshape(frames, hop).mean(axis=1)
        return lo + int(np.argmin(energy)) * hop + hop // 2

    def _speech(self, buffer: np.ndarray, offset: int, start: int, end: int) -> list[Segment]:
        """One stretch of talk: one segment, or one per turn when the gender changes inside it."""
        samples = buffer[start:end]
        p = self.block_p(samples, buffer, start)
        step = self._classifier.feature_set.block_samples
        cuts = [start] + [start + self._quietest(samples, i * step) for i in self._turn_starts(p)] + [end]
        out = []
        centres = start + np.arange(len(p)) * step + self._block // 2
        for a, b in zip(cuts, cuts[1:], strict=False):
            inside = (centres >= a) & (centres < b)
            piece = p[inside] if inside.any() else p[[int(np.argmin(np.abs(centres - (a + b) / 2)))]]
            value = self._classifier.calibrated(float(np.mean(piece)))
            gender = features.GENDER_NAMES[int(value >= self._classifier.threshold)]
            out.append(Segment((offset + a) / self.rate, (offset + b) / self.rate, SPEECH, gender, value,
                               float(np.sum(piece)), len(piece)))
        return out

    def _gap(self, buffer: np.ndarray, offset: int, start: int, end: int) -> Segment:
        kind = SILENCE if _level_dbfs(buffer[start:end]) < features.PAUSE_FLOOR_DBFS else NON_SPEECH
        return Segment((offset + start) / self.rate, (offset + end) / self.rate, kind)

    def _window(self, buffer: np.ndarray, offset: int, last: bool,
                frames: np.ndarray | None = None) -> tuple[list[Segment], int]:
        """Segments that are final in ``buffer``, and how many of its samples they cover."""
        if frames is None:
            frames = vad.speech_frames(buffer, self.config.method, self.rate, **self.config.vad_options())
        elif len(frames) != vad.frame_count(len(buffer), self.rate):
            raise ValueError(f"{len(frames)} precomputed speech frames for {len(buffer)} samples")
        frames = vad.widen(frames, round(self.config.pad_s / vad.FRAME_S))
        regions = [(round(s * self.rate), min(len(buffer), round(e * self.rate)))
                   for s, e in vad.speech_regions(frames, self.config.min_speech_s, self.config.min_pause_s)]
        keep_from = len(buffer)
        if not last:
            # The region reaching the end may go on in the next window: carry it (and the pause before it),
            # unless it is already max_segment_s long, in which case it is cut here.
            open_start = regions[-1][0] if regions and len(buffer) - regions[-1][1] < self.config.min_pause_s * \
                self.rate else None
            if open_start is not None and len(buffer) - open_start < self.config.max_segment_s * self.rate:
                regions, keep_from = regions[:-1], open_start
            else:
                # Nothing open: keep the last min_pause_s, which may be the start of a region.
                keep_from = max(regions[-1][1] if regions else 0, len(buffer) - round(self.config.min_pause_s
                                                                                     * self.rate))
        out, cursor = [], 0
        for start, end in regions:
            if start > cursor:
                out.append(self._gap(buffer, offset, cursor, start))
            out.extend(self._speech(buffer, offset, start, end))
            cursor = end
        if keep_from > cursor:
            out.append(self._gap(buffer, offset, cursor, keep_from))
            cursor = keep_from
        return out, cursor

    def _raw_segments(self, chunks: Iterable[np.ndarray], frames: np.ndarray | None) -> Iterator[Segment]:
        window = round(self.config.window_s * self.rate)
        buffer, offset = np.zeros(0, np.float32), 0
        for chunk in chunks:
            buffer = np.concatenate([buffer, chunk])
            while len(buffer) >= window:
                if frames is not None:
                    raise ValueError("precomputed speech frames are for a recording shorter than window_s only")
                out, used = self._window(buffer, offset, last=False)
                yield from out
                buffer, offset = buffer[used:], offset + used
        if len(buffer):
            out, _ = self._window(buffer, offset, last=True, frames=frames)
            yield from out

    def segments(self, chunks: Iterable[np.ndarray], frames: np.ndarray | None = None) -> Iterator[Segment]:
        """The recording given as consecutive waveform chunks (at the model's rate), segmented, in order.

        ``frames``: the recording's speech mask (``vad.speech_frames``), when it
        was already detected (several recordings batched); only for a recording
        shorter than ``window_s``.

        Adjacent pieces of the same kind (and, for speech, the same gender
        with less than ``merge_gap_s`` between them) are joined; the
        non-speech between joined speech becomes part of the speech segment.

        Raises:
          audio.AudioError: as the chunks' source raises it.
        """
        pending: list[Segment] = []  # a speech segment and the non-speech after it, while a merge is possible
        for segment in self._raw_segments(chunks, frames):
            pending.append(segment)
            pending = list(self._merge(pending))
            # Emit what can no longer change: everything before the last speech segment, and a gap too long
            # to be bridged.
            last_speech = max((i for i, s in enumerate(pending) if s.kind == SPEECH), default=None)
            gap = sum(s.duration_s for s in pending[(last_speech or 0) + 1:]) if last_speech is not None else None
            cut = len(pending) if last_speech is None or gap >= self.config.merge_gap_s else last_speech
            yield from pending[:cut]
            pending = pending[cut:]
        yield from self._merge(pending)

    def _merge(self, pieces: list[Segment]) -> Iterator[Segment]:
        """Joins same-kind neighbours, and same-gender speech across a short gap."""
        out: list[Segment] = []
        for piece in pieces:
            if out and out[-1].kind == piece.kind and piece.kind != SPEECH:
                out[-1] = dataclasses.replace(out[-1], end_s=piece.end_s)
                continue
            if piece.kind == SPEECH:
                j = len(out) - 1
                while j >= 0 and out[j].kind != SPEECH:
                    j -= 1
                gap = out[-1].end_s - out[j].end_s if j >= 0 else None
                if j >= 0 and out[j].gender == piece.gender and gap < self.config.merge_gap_s:
                    a, b = out[j], piece
                    p = (a.p_female * a.duration_s + b.p_female * b.duration_s) / (a.duration_s + b.duration_s)
                    out[j:] = [dataclasses.replace(a, end_s=b.end_s, p_female=p, block_sum=a.block_sum + b.block_sum,
                                                   blocks=a.blocks + b.blocks)]
                    continue
            out.append(piece)
        yield from out


@dataclasses.dataclass(frozen=True)
class FileSegments:
    """One file's segments, or the reason it could not be read (``<reason>: <detail>``)."""

    path: str
    segments: tuple[Segment, ...] = ()
    error: str | None = None


def segment_file(classifier, path: str, config: SegmentConfig,
                 chunks: Iterable[np.ndarray] | None = None) -> FileSegments:
    """Streams and segments one local file (or ``chunks`` of a waveform at the model's rate, named ``path``);
    never raises for a bad file (the error is returned)."""
    try:
        source = classifier.stream(path) if chunks is None else chunks
        return FileSegments(path, tuple(Segmenter(classifier, config).segments(source)))
    except audio.AudioError as e:
        return FileSegments(path, error=f"{e.reason}: {e.detail}")
    except NonFiniteOutputError as e:
        return FileSegments(path, error=f"{audio.NON_FINITE}: {e}")


def speech_verdict(classifier, path: str, config: SegmentConfig, chunks: Iterable[np.ndarray] | None = None,
                   frames: np.ndarray | None = None) -> Prediction:
    """One file's verdict over its speech only: the mean p_female of the blocks of its speech segments.

    Music, noise and silence between the speech never count, so a lecture
    with music between its parts is judged on the talk. Streams the file (see
    ``Segmenter``), or ``chunks`` of a waveform at the model's rate (named
    ``path``); never raises for a bad file. ``frames``: its speech mask, when
    already detected (see ``Segmenter.segments``).

    Returns:
      A Prediction with ``speech_s`` set; or an error: ``too_short`` (less
      than one block), ``silent`` (nothing above the silence floor),
      ``no_speech`` (sound, but no speech found), or the file's read error.
    """
    source = _CountedChunks()
    total, blocks, speech_s, heard_sound = 0.0, 0, 0.0, False
    try:
        stream = classifier.stream(path) if chunks is None else chunks
        for segment in Segmenter(classifier, config).segments(source.read(stream), frames):
            if segment.kind == SPEECH:
                total, blocks, speech_s = total + segment.block_sum, blocks + segment.blocks, \
                    speech_s + segment.duration_s
            heard_sound = heard_sound or segment.kind == NON_SPEECH
    except audio.AudioError as e:
        return failure(path, e.reason, e.detail)
    except NonFiniteOutputError as e:
        return failure(path, audio.NON_FINITE, str(e))
    duration = source.samples / classifier.sample_rate
    if source.samples < classifier.feature_set.min_clip_samples:
        return classifier.too_short(path, source.samples)
    if not blocks:
        if not heard_sound:
            return failure(path, audio.SILENT, f"all {duration:.1f} s are below {features.PAUSE_FLOOR_DBFS} dBFS")
        return failure(path, audio.NO_SPEECH, f"no speech found by --vad={config.method} in {duration:.1f} s "
                                              "(music, noise or silence)")
    return classifier.verdict(path, total / blocks, duration, speech_s)


def file_function(classifier, method: str, segmented: bool) -> Callable[[str], Prediction | FileSegments]:
    """What ``predict`` runs on each path: its segments (``segment_file``) or its verdict (``file_classifier``)."""
    if segmented:
        config = SegmentConfig(method=method)
        return lambda path: segment_file(classifier, path, config)
    return file_classifier(classifier, method)


def file_classifier(classifier, method: str) -> Callable[[str], Prediction]:
    """path -> Prediction: over the speech ``method`` detects (``speech_verdict``), or with ``WHOLE_FILE``
    over every voiced block (``Classifier.classify_file``: about 2.5x faster, for clips known to be speech)."""
    if method == WHOLE_FILE:
        return classifier.classify_file
    config = SegmentConfig(method=method)
    return lambda path: speech_verdict(classifier, path, config)


class _CountedChunks:
    """Counts the samples of a chunk stream as it is read (a file's length is known only at its end)."""

    def __init__(self):
        self.samples = 0

    def read(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            self.samples += len(chunk)
            yield chunk
