"""DecodeAudio: (split, Clip) -> ClipBlocks, bad clips routed to rejections."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import common_voice as cv
from beam_jobs.read import NAMESPACE, REJECTED
from pipeline import audio, features


@dataclasses.dataclass
class ClipBlocks:
    """The voiced blocks of one decoded clip.

    Attributes:
      split: the clip's split.
      clip: the clip's TSV row.
      blocks: float32 [n, frames, bins].
      block_indices: int [n], each block's position among the clip's blocks.
      seconds: the clip's decoded duration.
    """

    split: str
    clip: cv.Clip
    blocks: np.ndarray
    block_indices: np.ndarray
    seconds: float


def read_clip_audio(clip: cv.Clip, sample_rate: int) -> np.ndarray:
    """Reads a clip (local or gs://) and decodes it to mono float32 at ``sample_rate``.

    Raises:
      audio.AudioError: ``missing_file`` if it cannot be opened, else as ``audio.decode_audio``.
    """
    try:
        with FileSystems.open(clip.audio_path) as f:
            data = f.read()
    except Exception as e:  # FileSystems raises BeamIOError, OSError, ...
        raise audio.AudioError(audio.MISSING_FILE, f"{clip.audio_path}: cannot open: {type(e).__name__}") from None
    return audio.decode_audio(data, sample_rate, clip.audio_path)


def evenly_spaced(count: int, limit: int) -> np.ndarray:
    """``limit`` indices spread over ``range(count)`` (all of them if fewer)."""
    if limit <= 0 or count <= limit:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(np.int64)


class DecodeAudioFn(beam.DoFn):
    """Reads, decodes, resamples and cuts one clip into feature blocks.

    TensorFlow and the traced feature function are created in ``setup()``,
    once per worker, not once per clip.
    """

    def __init__(self, feature_set: features.FeatureSet, max_blocks_per_clip: int):
        self._feature_set = feature_set
        self._max_blocks = max_blocks_per_clip
        self._block_fn = None
        self._decoded = Metrics.counter(NAMESPACE, "clips_decoded")
        self._silent_blocks = Metrics.counter(NAMESPACE, "blocks_silent_dropped")
        self._capped_blocks = Metrics.counter(NAMESPACE, "blocks_over_cap_dropped")

    def setup(self):
        # Several workers share the cores; TF's own thread pools would
        # oversubscribe them (measured in benchmarks/preprocess.py).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        from pipeline import spectrogram

        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # TF already initialised in this process (e.g. in tests)
        self._block_fn = spectrogram.make_block_fn(self._feature_set)

    def _reject(self, clip: cv.Clip, reason: str, detail: str):
        Metrics.counter(NAMESPACE, f"rejected_{reason}").inc()
        return beam.pvalue.TaggedOutput(REJECTED, cv.Rejection(clip.clip_id, reason, detail))

    def process(self, element: tuple[str, cv.Clip]) -> Iterable:
        split, clip = element
        try:
            waveform = read_clip_audio(clip, self._feature_set.sample_rate)
        except audio.AudioError as e:
            yield self._reject(clip, e.reason, e.detail)
            return
        seconds = len(waveform) / self._feature_set.sample_rate
        blocks, voiced = self._block_fn(waveform)
        blocks, voiced = blocks.numpy(), voiced.numpy()
        if len(blocks) == 0:
            yield self._reject(
                clip,
                audio.TOO_SHORT,
                f"{seconds:.2f} s, shorter than one block "
                f"({self._feature_set.min_clip_samples / self._feature_set.sample_rate:.2f} s)",
            )
            return
        indices = np.flatnonzero(voiced)
        if len(indices) == 0:
            yield self._reject(clip, audio.SILENT, f"all {len(blocks)} blocks are silent")
            return
        self._silent_blocks.inc(int(len(blocks) - len(indices)))
        kept = indices[evenly_spaced(len(indices), self._max_blocks)]
        self._capped_blocks.inc(int(len(indices) - len(kept)))
        self._decoded.inc()
        yield ClipBlocks(split, clip, blocks[kept], kept, seconds)


class DecodeAudio(beam.PTransform):
    """(split, Clip) -> (ClipBlocks, Rejections)."""

    def __init__(self, feature_set: features.FeatureSet, max_blocks_per_clip: int):
        super().__init__()
        self._fn = DecodeAudioFn(feature_set, max_blocks_per_clip)

    def expand(self, keyed_clips):
        outputs = (
            keyed_clips
            # Decoding is the expensive step: spread the clips over all workers.
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(self._fn).with_outputs(REJECTED, main="blocks")
        )
        return outputs.blocks, outputs[REJECTED]
