"""Spill files: where decoded spectrogram blocks wait for their shard, on disk, never in a shuffle.

Balancing and shard planning need every clip's block count, which only
decoding tells; the shard a block goes to is known only after that. Rather
than carry spectrograms through a shuffle (the local runner holds every
shuffled PCollection in memory, so memory would grow with the corpus), the
decoding step appends each clip's blocks to a spill file of its own bundle and
emits a small ``SpillRef``. The shard writers read the blocks back by offset.
Only references cross a shuffle; heavy data is written twice, by the decoder
(spill) and by the shard writer, and never held beyond one shard.

Spill files live in ``<output_dir>/_spill-<id>/`` (local or gs://) and are
deleted when the job ends, successfully or not.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline import common_voice as cv

SPILL_PREFIX = "_spill-"
SPILL_SUFFIX = ".f32"


def new_spill_dir(output_dir: str) -> str:
    """A fresh spill directory under ``output_dir`` (created lazily by the first write)."""
    return cv.join(output_dir, f"{SPILL_PREFIX}{uuid.uuid4().hex[:12]}")


@dataclasses.dataclass(frozen=True)
class SpillRef:
    """Where a clip's spilled blocks are: ``count`` blocks of ``block_nbytes`` from ``offset``."""

    path: str
    offset: int
    count: int


class SpillWriter:
    """Appends clips' blocks (raw little-endian float32) to one new spill file.

    One writer per DoFn bundle: the file is closed in ``finish_bundle``, before
    any later stage (behind a shuffle) reads it.
    """

    def __init__(self, spill_dir: str):
        self._path = cv.join(spill_dir, uuid.uuid4().hex + SPILL_SUFFIX)
        self._file = None
        self._offset = 0  # counted here: remote write channels cannot tell()

    def write(self, blocks: np.ndarray) -> SpillRef:
        """Appends ``blocks`` ([n, frames, bins]); returns their reference."""
        if self._file is None:
            self._file = FileSystems.create(self._path, compression_type=CompressionTypes.UNCOMPRESSED)
        data = np.ascontiguousarray(blocks, dtype="<f4").tobytes()
        self._file.write(data)
        ref = SpillRef(self._path, self._offset, len(blocks))
        self._offset += len(data)
        return ref

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_blocks(
    requests: Sequence[tuple[SpillRef, Sequence[int]]], block_shape: tuple[int, int]
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Reads spilled blocks back in storage order (each spill file opened once).

    Args:
      requests: (reference, slots) pairs; a slot is a block's position among
        the reference's ``count`` blocks.
      block_shape: (frames, bins) of one block.

    Yields:
      (request index, slot, float32 [frames, bins]) for every requested slot;
      nothing is buffered, so the caller decides what it holds.

    Raises:
      OSError: a spill file is missing or shorter than its reference says
        (a lost spill file must fail the job, never drop blocks quietly).
    """
    nbytes = 4 * block_shape[0] * block_shape[1]
    order = sorted(range(len(requests)), key=lambda i: (requests[i][0].path, requests[i][0].offset))
    current_path, stream = None, None
    try:
        for i in order:
            ref, slots = requests[i]
            if ref.path != current_path:
                if stream is not None:
                    stream.close()
                stream = FileSystems.open(ref.path, compression_type=CompressionTypes.UNCOMPRESSED)
                current_path = ref.path
            for slot in sorted(slots):
                if not 0 <= slot < ref.count:
                    raise OSError(f"{ref.path}: slot {slot} outside the {ref.count} blocks at offset {ref.offset}")
                position = ref.offset + slot * nbytes
                stream.seek(position)
                data = stream.read(nbytes)
                if len(data) != nbytes:
                    raise OSError(f"{ref.path}: truncated spill file ({len(data)} of {nbytes} bytes at "
                                  f"offset {position})")
                yield i, slot, np.frombuffer(data, dtype="<f4").reshape(block_shape)
    finally:
        if stream is not None:
            stream.close()


def delete_spill_dir(spill_dir: str) -> None:
    """Removes a spill directory and everything in it; a missing one is fine."""
    matches: Iterable = FileSystems.match([cv.join(spill_dir, "*")])[0].metadata_list
    paths = [m.path for m in matches]
    if paths:
        FileSystems.delete(paths)
    if FileSystems.exists(spill_dir):
        FileSystems.delete([spill_dir])
