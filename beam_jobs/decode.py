"""DecodeAudio: (split, Clip) -> DecodedClip (blocks spilled to disk), bad clips routed to rejections."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import progress, rejections
from beam_jobs.rejections import NAMESPACE
from beam_jobs.spill import SpillRef, SpillWriter
from pipeline import audio, features, frontend
from pipeline import common_voice as cv

AUGMENTED_ID_SEPARATOR = "#aug"  # an augmented copy's clip id: "<locale>/<path>#aug<k>"
AUGMENTATION_FAILED = "augmentation_failed"  # a rejection reason: one copy not made; its clip is kept


@dataclasses.dataclass(frozen=True)
class CopySettings:
    """The train-only augmented copies ``DecodeAudioFn`` makes (``PreprocessConfig``'s ``augment_*`` flags).

    Attributes:
      copies: copies of each chosen train clip (0: none).
      fraction: the share of train clips chosen for copies (seeded per clip).
      female_lowered: the share of women's copies lowered and subdued instead of raised (seeded per copy).
      max_f0_factor: a raised copy's highest F0 factor (the lowest is 1.1).
      max_f0_rise_hz: the most a raised copy's median F0 may rise.
    """

    copies: int = 0
    fraction: float = 1.0
    female_lowered: float = 0.0
    max_f0_factor: float = 1.6
    max_f0_rise_hz: float = 100.0


@dataclasses.dataclass(frozen=True)
class DecodedClip:
    """One decoded clip's kept blocks, by reference: small enough for any shuffle.

    Attributes:
      split: the clip's split.
      clip: the clip's TSV row.
      block_indices: each kept block's position among the clip's blocks (voiced,
        at most ``max_blocks_per_clip``, evenly spaced), ascending.
      seconds: the clip's decoded duration.
      spill: where the blocks are, in ``block_indices`` order (slot i holds
        block ``block_indices[i]``).
    """

    split: str
    clip: cv.Clip
    block_indices: tuple[int, ...]
    seconds: float
    spill: SpillRef


def clips_dir_of(clip: cv.Clip) -> str:
    """The ``clips/`` directory a clip's TSV path is relative to."""
    relative = clip.clip_id.split("/", 1)[-1]
    if "/" not in clip.clip_id or not clip.audio_path.endswith("/" + relative):
        return posixpath.dirname(clip.audio_path)  # a Clip not made by the TSV parser
    return clip.audio_path[: len(clip.audio_path) - len(relative)].rstrip("/")


def check_inside_clips(clip: cv.Clip) -> None:
    """Refuses a local clip whose path, symlinks resolved, leaves its locale's ``clips/``.

    Raises:
      audio.AudioError: ``path_outside_clips``.
    """
    clips_dir = os.path.realpath(clips_dir_of(clip))
    resolved = os.path.realpath(clip.audio_path)
    if not resolved.startswith(clips_dir + os.sep):
        raise audio.AudioError(audio.PATH_OUTSIDE_CLIPS, f"{clip.audio_path}: resolves to {resolved}, outside {clips_dir}")


def open_remote(path: str):
    """Opens a gs:// (or other Beam filesystem) clip as it is: nothing is decompressed.

    Raises:
      audio.AudioError: ``missing_file`` or ``unreadable_file``, with the error's type.
    """
    try:
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as e:  # FileSystems raises BeamIOError, OSError, ...
        missing = isinstance(e, FileNotFoundError) or "not found" in str(e).lower() or "no such" in str(e).lower()
        raise audio.AudioError(audio.MISSING_FILE if missing else audio.UNREADABLE_FILE,
                               f"{path}: cannot open: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
                               ) from None


@contextlib.contextmanager
def clip_source(clip: cv.Clip) -> Iterator[str | BinaryIO]:
    """A clip to stream from (``audio.stream_audio``): a checked local path or an open remote file.

    Raises:
      audio.AudioError: as ``check_inside_clips``, ``audio.check_local_file`` or ``open_remote``.
    """
    if "://" not in clip.audio_path:
        check_inside_clips(clip)
        audio.check_local_file(clip.audio_path)
        yield clip.audio_path
        return
    with open_remote(clip.audio_path) as f:
        yield f


def read_clip_bytes(clip: cv.Clip) -> bytes:
    """A clip's file, read only if it lies inside its locale's ``clips/`` and is a regular file.

    Local paths are resolved (symlinks included) before the check; nothing is
    decompressed on the way (a ``.gz`` path is read as it is) and no more than
    ``audio.MAX_FILE_BYTES`` are read.

    Raises:
      audio.AudioError: ``path_outside_clips``, ``missing_file``, ``unreadable_file``,
        ``not_a_file`` or ``too_long``.
    """
    path = clip.audio_path
    if "://" not in path:
        check_inside_clips(clip)
        return audio.read_local_bytes(path)
    with open_remote(path) as f:
        data = audio.read_capped(f)
    if len(data) > audio.MAX_FILE_BYTES:
        raise audio.AudioError(audio.TOO_LONG, f"{path}: over the {audio.MAX_FILE_BYTES // 2**20} MiB a clip may have")
    return data


def read_clip_audio(clip: cv.Clip, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Reads a clip (local or gs://) and decodes it to mono float32 at ``sample_rate``.

    Raises:
      audio.AudioError: as ``read_clip_bytes``, then as ``audio.decode_audio``.
    """
    return audio.decode_audio(read_clip_bytes(clip), sample_rate, clip.audio_path, max_seconds)


_blas_limited = False


def limit_blas_threads() -> None:
    """One BLAS thread in this process, for good (the front end's mel matmul).

    The runner starts a worker per core already, and OpenBLAS's own threads, one per core in every
    worker, doubled the CPU per clip (WORKSPACE.md). Process-wide and never undone: a worker may hold
    several DoFn instances, and one's teardown must not give the others their threads back.
    """
    global _blas_limited
    if not _blas_limited:
        import threadpoolctl

        threadpoolctl.threadpool_limits(limits=1, user_api="blas")
        _blas_limited = True


def evenly_spaced(count: int, limit: int) -> np.ndarray:
    """``limit`` indices spread over ``range(count)`` (all of them if fewer)."""
    if limit <= 0 or count <= limit:
        return np.arange(count)
    return np.linspace(0, count - 1, limit).round().astype(np.int64)


def cut_blocks(waveform: np.ndarray, feature_set: features.FeatureSet,
               max_blocks: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A clip's kept blocks: voiced, at most ``max_blocks``, evenly spaced.

    The features are ``pipeline.frontend``'s (numpy): the serving graph's ``pipeline.spectrogram``
    in value, without TensorFlow in the workers.

    Returns:
      (blocks float32 [n, frames, bins], their indices among the clip's blocks,
      voiced block count, whole block count).

    Raises:
      audio.AudioError: ``too_short``, ``silent`` or ``non_finite``.
    """
    blocks, voiced = frontend.waveform_to_blocks(waveform, feature_set)
    seconds = len(waveform) / feature_set.sample_rate
    if len(blocks) == 0:
        raise audio.AudioError(
            audio.TOO_SHORT,
            f"{seconds:.2f} s, shorter than one block ({feature_set.min_clip_samples / feature_set.sample_rate:.2f} s)",
        )
    indices = np.flatnonzero(voiced)
    if len(indices) == 0:
        raise audio.AudioError(audio.SILENT, f"all {len(blocks)} blocks are silent")
    kept = indices[evenly_spaced(len(indices), max_blocks)]
    blocks = blocks[kept]
    if not np.isfinite(blocks).all():
        raise audio.AudioError(audio.NON_FINITE, "the features of a finite waveform overflowed (inf/NaN)")
    return blocks, kept, len(indices), len(voiced)


class DecodeAudioFn(beam.DoFn):
    """Reads, decodes, resamples and cuts one clip; spills its kept blocks.

    The features are numpy (``pipeline.frontend``): a worker imports no
    TensorFlow. The blocks go to this bundle's spill file and only a
    ``DecodedClip`` (ids, indices, a file offset) is emitted, so no
    spectrogram ever crosses a shuffle.
    """

    def __init__(self, feature_set: features.FeatureSet, max_blocks_per_clip: int, spill_dir: str,
                 progress_dir: str | None = None, max_clip_seconds: float | None = None, seed: int = 0,
                 augment: CopySettings = CopySettings()):
        self._feature_set = feature_set
        self._max_seconds = max_clip_seconds
        self._augment = augment
        self._seed = seed
        self._max_blocks = max_blocks_per_clip
        self._spill_dir = spill_dir
        self._progress_dir = progress_dir
        self._spill = None
        self._progress = None
        self._decoded = Metrics.counter(NAMESPACE, progress.CLIPS_DECODED)
        self._failed = Metrics.counter(NAMESPACE, progress.CLIPS_FAILED)
        self._decode_ms = Metrics.distribution(NAMESPACE, "decode_ms_per_clip")
        self._silent_blocks = Metrics.counter(NAMESPACE, "blocks_silent_dropped")
        self._capped_blocks = Metrics.counter(NAMESPACE, "blocks_over_cap_dropped")
        self._augmented = Metrics.counter(NAMESPACE, "train_copies_augmented")
        self._augment_failed = Metrics.counter(NAMESPACE, "train_copies_failed")

    def setup(self):
        limit_blas_threads()
        self._progress = progress.ProgressFile(self._progress_dir)

    def start_bundle(self):
        self._spill = SpillWriter(self._spill_dir)

    def finish_bundle(self):
        # Closed before any later stage can read it: a shuffle follows.
        self._spill.close()
        self._progress.flush()

    def teardown(self):
        if self._progress is not None:
            self._progress.flush()

    def _reject(self, clip: cv.Clip, reason: str, detail: str):
        self._failed.inc()
        self._progress.add(progress.CLIPS_FAILED)
        return rejections.reject(clip.clip_id, reason, detail)

    def process(self, element: tuple[str, cv.Clip], total: int = 0) -> Iterable:
        split, clip = element
        self._progress.set(progress.CLIPS_TO_DECODE, total)
        start = time.perf_counter()
        try:
            waveform = read_clip_audio(clip, self._feature_set.sample_rate, self._max_seconds)
            blocks, kept, voiced, whole = cut_blocks(waveform, self._feature_set, self._max_blocks)
        except Exception as e:  # noqa: BLE001 (any failure of one clip is its rejection, never the job's)
            yield self._reject(clip, *audio.failure_reason(e))
            return
        ref = self._spill.write(blocks)
        self._decode_ms.update(int(1000 * (time.perf_counter() - start)))
        self._silent_blocks.inc(whole - voiced)
        self._capped_blocks.inc(voiced - len(kept))
        self._decoded.inc()
        self._progress.add(progress.CLIPS_DECODED)
        yield DecodedClip(split, clip, tuple(int(i) for i in kept), len(waveform) / self._feature_set.sample_rate, ref)
        if (split == features.TRAIN and self._augment.copies
                and cv.stable_fraction("augment-pick", str(self._seed), clip.clip_id) < self._augment.fraction):
            yield from self._augmented_copies(clip, waveform)

    def _augmented_copies(self, clip: cv.Clip, waveform: np.ndarray) -> Iterator:
        """Train only: F0-raised, effortful copies of one decoded clip (``pipeline.waveform_augment``).

        A seeded share (``CopySettings.female_lowered``) of a woman's copies are lowered and subdued instead.

        Each copy's spec is drawn from a generator seeded by (seed, clip id,
        copy), so a seed gives the same data on any runner; each copy is cut
        and spilled like a recorded clip, then forgotten (memory: one clip).
        A copy that fails is a rejection of that copy only.
        """
        from pipeline import waveform_augment

        rate = self._feature_set.sample_rate
        median_f0 = waveform_augment.estimate_median_f0(waveform, rate)
        settings = self._augment
        for k in range(settings.copies):
            copy_id = f"{clip.clip_id}{AUGMENTED_ID_SEPARATOR}{k}"
            rng = np.random.default_rng(int(cv.stable_fraction("augment", str(self._seed), copy_id) * 2**53))
            try:
                lowered = (clip.label == features.FEMALE and
                           cv.stable_fraction("augment-lower", str(self._seed), copy_id) < settings.female_lowered)
                if lowered:
                    spec = waveform_augment.draw_lowered_spec(rng, median_f0)
                else:
                    spec = waveform_augment.draw_spec(
                        rng, median_f0, f0_factor_range=(waveform_augment.F0_FACTOR_RANGE[0], settings.max_f0_factor),
                        max_f0_rise_hz=settings.max_f0_rise_hz)
                changed = waveform_augment.apply(waveform, rate, spec)
                blocks, kept, _, _ = cut_blocks(changed, self._feature_set, self._max_blocks)
            except Exception as e:  # noqa: BLE001 (a copy that fails costs that copy, never its clip)
                self._augment_failed.inc()
                reason, detail = audio.failure_reason(e)
                yield rejections.reject(copy_id, AUGMENTATION_FAILED, f"{reason}: {detail}")
                continue
            self._augmented.inc()
            copy = dataclasses.replace(clip, clip_id=copy_id, augmentation=spec.tag)
            yield DecodedClip(features.TRAIN, copy, tuple(int(i) for i in kept), len(changed) / rate,
                              self._spill.write(blocks))


class DecodeAudio(beam.PTransform):
    """(split, Clip) -> (DecodedClip, Rejections); the blocks go to spill files.

    Args:
      feature_set: the spectrogram parameters.
      max_blocks_per_clip: cap per clip, evenly spaced (0: no cap).
      spill_dir: where the bundles' spill files go.
      progress_dir: a local directory for progress files (local runs only).
      max_clip_seconds: longer clips are rejected as ``too_long`` before decoding.
      seed: seeds the choice of clips and the copies' specs.
      augment: the train-only augmented copies (none by default).
    """

    def __init__(self, feature_set: features.FeatureSet, max_blocks_per_clip: int, spill_dir: str,
                 progress_dir: str | None = None, max_clip_seconds: float | None = None, seed: int = 0,
                 augment: CopySettings = CopySettings()):
        super().__init__()
        self._fn = DecodeAudioFn(feature_set, max_blocks_per_clip, spill_dir, progress_dir, max_clip_seconds, seed,
                                 augment)

    def expand(self, keyed_clips):
        total = (
            keyed_clips
            | "CountToDecode" >> beam.combiners.Count.Globally()
            | "CountMetric" >> beam.Map(progress.count_to_decode)
        )
        outputs = (
            keyed_clips
            # Decoding is the expensive step: spread the clips over all workers.
            | "Spread" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(self._fn, total=beam.pvalue.AsSingleton(total)).with_outputs(
                rejections.REJECTED, main="decoded")
        )
        return outputs.decoded, outputs[rejections.REJECTED]
