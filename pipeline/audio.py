"""Decoding audio bytes to mono float32 waveforms at a target sample rate.

libsndfile (through ``soundfile``) decodes MP3, WAV, FLAC and OGG; ``soxr``
resamples. WORKSPACE.md records why not tensorflow-io (abandoned, fails to
load on TF >= 2.18, and measured slower).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import soundfile
import soxr

# Reason codes for clips that cannot be used; they name counters and the
# ``reason`` column of rejected-*.tsv.
MISSING_FILE = "missing_file"
EMPTY_FILE = "empty_file"
UNDECODABLE = "undecodable"
NO_AUDIO = "no_audio"
TOO_SHORT = "too_short"
SILENT = "silent"
NO_SPEECH = "no_speech"  # sound, but no speech found by the speech detector (music, noise)
NON_FINITE = "non_finite"
TOO_LONG = "too_long"
UNREADABLE_FILE = "unreadable_file"  # exists, but cannot be read (permissions, I/O error)
NOT_A_FILE = "not_a_file"  # a directory, FIFO, device or socket
PATH_OUTSIDE_CLIPS = "path_outside_clips"
OUT_OF_MEMORY = "out_of_memory"  # one clip's decode or features ran out of memory
UNEXPECTED_ERROR = "unexpected_error"  # any other exception while processing one clip (a bug to report)

# Below this rate a header does not describe audio: a 32 KB WAV claiming 1 Hz
# would otherwise decode to hours of samples at the model's rate.
MIN_SOURCE_RATE = 1000

# Streamed files are decoded this many seconds at a time (``stream_audio``).
STREAM_CHUNK_SECONDS = 10.0

# Formats whose header length is an estimate: libsndfile guesses an MP3's
# frames from its size, and counts a large ID3v2 tag (embedded cover art) as
# audio (a 1.8 s clip with a 0.5 MB picture reads as 64 s). Their length is
# judged from decoded frames instead (``_read_bounded``).
ESTIMATED_LENGTH_FORMATS = ("MP3",)

# The first bytes of a file libsndfile refused, looked at to say what it is instead.
SNIFF_BYTES = 512

# No clip is read past this many bytes: 10 minutes of 48 kHz stereo 16-bit WAV
# (a Common Voice MP3 is ~50 KB). It bounds memory before anything is decoded.
MAX_FILE_BYTES = 128 * 2**20


class AudioError(Exception):
    """A clip that cannot be turned into features.

    Attributes:
      reason: one of the reason codes above.
      detail: a human-readable explanation.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_audio(data: bytes, sample_rate: int, name: str = "<bytes>", max_seconds: float | None = None) -> np.ndarray:
    """Decodes an encoded audio file to a mono waveform.

    Args:
      data: the file's bytes (any format libsndfile reads).
      sample_rate: the rate to resample to, in Hz.
      name: the file's name, for error messages.
      max_seconds: refuse longer audio, judged from the header before any
        sample is decoded (a 32 KB WAV whose header claims 1 Hz would
        otherwise decode to 16,000 s at the target rate).

    Returns:
      float32 [samples] in [-1, 1] at ``sample_rate``.

    Raises:
      AudioError: with reason ``empty_file``, ``undecodable``, ``no_audio``,
        ``too_long`` or ``non_finite`` (a float file holding inf or NaN
        samples: one such clip would turn every normalization statistic into NaN).
    """
    if not data:
        raise AudioError(EMPTY_FILE, f"{name} is empty (0 bytes)")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            check_source_rate(f.samplerate, name)
            if max_seconds is not None and f.format not in ESTIMATED_LENGTH_FORMATS:
                check_length(f.frames, f.samplerate, f.channels, sample_rate, max_seconds, name)
            audio, source_rate = _read_bounded(f, max_seconds, name), f.samplerate
    except AudioError:
        raise
    except Exception as e:  # libsndfile raises several types for bad input
        raise _undecodable(name, e, head=data[:SNIFF_BYTES]) from None
    if audio.shape[0] == 0:
        raise AudioError(NO_AUDIO, f"{name} decodes to 0 samples")
    if not np.isfinite(audio).all():
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        first = int(np.flatnonzero(~np.isfinite(audio).all(axis=1))[0])
        raise AudioError(NON_FINITE, f"{name}: {bad} of {audio.size} samples are inf or NaN, the first at "
                                     f"{first / source_rate:.2f} s")
    mono = downmix(audio)
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _read_bounded(f: soundfile.SoundFile, max_seconds: float | None, name: str) -> np.ndarray:
    """All of ``f``'s frames, or ``too_long`` as soon as the decoded audio passes ``max_seconds``.

    The limit is judged from decoded frames, not from the header's estimate,
    so the memory is at most ``max_seconds`` of audio plus one chunk. (libsndfile
    itself still stops reading at its header's frame count: an MP3 whose header
    says less than it holds, two MP3s joined, decodes to the header's length.)
    """
    if max_seconds is None:
        return f.read(dtype="float32", always_2d=True)
    limit = int(max_seconds * f.samplerate)
    chunk = max(1, int(STREAM_CHUNK_SECONDS * f.samplerate))
    pieces, frames = [], 0
    while True:
        block = f.read(chunk, dtype="float32", always_2d=True)
        frames += len(block)
        if frames > limit:
            raise AudioError(TOO_LONG, f"{name}: decodes to more than {max_seconds:g} s (the limit); decoding "
                                       f"stopped at {frames / f.samplerate:,.1f} s")
        if len(block):
            pieces.append(block)
        if len(block) < chunk:
            break
    return np.concatenate(pieces) if pieces else np.zeros((0, f.channels), np.float32)


def failure_reason(error: BaseException) -> tuple[str, str]:
    """(reason code, detail) for any exception raised while processing one clip.

    One clip's failure, whatever it is, must become a rejection with a reason
    and never stop a job over a million clips; the detail keeps the exception's
    type and first line so an unexpected one can still be reported and fixed.
    """
    if isinstance(error, AudioError):
        return error.reason, error.detail
    first_line = (str(error).splitlines() or [""])[0][:300]
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return OUT_OF_MEMORY, f"{type(error).__name__}: {first_line}"
    return UNEXPECTED_ERROR, f"{type(error).__name__}: {first_line}"


def downmix(audio: np.ndarray) -> np.ndarray:
    """[frames, channels] -> [frames], averaging channels (the usual convention: it keeps the level)."""
    return audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]


def check_source_rate(source_rate: int, name: str) -> None:
    """Refuses a header whose sample rate cannot be audio.

    Raises:
      AudioError: ``undecodable``, naming the file and the rate.
    """
    if source_rate < MIN_SOURCE_RATE:
        raise AudioError(UNDECODABLE, f"{name}: header claims {source_rate} Hz, below the "
                                      f"{MIN_SOURCE_RATE} Hz any audio has")


def stream_audio(source: str | BinaryIO, sample_rate: int, name: str,
                 chunk_seconds: float = STREAM_CHUNK_SECONDS) -> Iterator[np.ndarray]:
    """Decodes audio chunk by chunk: memory is bounded by one chunk, whatever the file's length.

    Args:
      source: a local path (check it with ``check_local_file`` first) or a
        seekable binary file object (a ``FileSystems.open`` handle for gs://).
      sample_rate: the rate to resample to, in Hz (streamed through soxr).
      name: the file's name, for error messages.
      chunk_seconds: source seconds decoded per chunk.

    Yields:
      Non-empty float32 mono chunks at ``sample_rate``, in order; their
      concatenation is the whole file.

    Raises:
      AudioError: ``empty_file``, ``undecodable``, ``no_audio`` or ``non_finite``, possibly after
        some chunks were yielded (the caller then discards the file's partial result).
    """
    try:
        f = soundfile.SoundFile(source)
    except Exception as e:  # libsndfile raises several types for bad input
        if _is_empty(source):
            raise AudioError(EMPTY_FILE, f"{name} is empty (0 bytes)") from None
        raise _undecodable(name, e, head=_head(source)) from None
    with f:
        check_source_rate(f.samplerate, name)
        chunk_frames = max(1, int(chunk_seconds * f.samplerate))
        resampler = None
        if f.samplerate != sample_rate:
            resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        frames_read = 0
        while True:
            try:
                block = f.read(chunk_frames, dtype="float32", always_2d=True)
            except Exception as e:
                raise _undecodable(name, e, f" after {frames_read / f.samplerate:.1f} s") from None
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                first = frames_read + int(np.flatnonzero(~finite)[0])
                raise AudioError(NON_FINITE, f"{name}: inf or NaN samples, the first at {first / f.samplerate:.2f} s")
            frames_read += len(block)
            last = len(block) < chunk_frames
            mono = downmix(block)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                break
        if frames_read == 0:
            raise AudioError(NO_AUDIO, f"{name} decodes to 0 samples")


def _undecodable(name: str, error: Exception, suffix: str = "", head: bytes | None = None) -> AudioError:
    """``undecodable``, saying what the file is when libsndfile did not recognise it at all.

    libsndfile's own message (in ``error_string``) is kept for real decoding
    errors; for a file it cannot open it says "possibly a pipe?" or "Format
    not recognised", which misleads about a text file named ``.mp3``, so the
    first bytes are described instead.
    """
    message = str(getattr(error, "error_string", None) or error)
    unrecognised = "possibly a pipe" in message or "not recognised" in message.lower() or "unknown format" in message
    if head is not None and unrecognised:
        return AudioError(UNDECODABLE, f"{name}: {describe_unrecognised(head)}{suffix}")
    return AudioError(UNDECODABLE, f"{name}: libsndfile: {message.splitlines()[0] if message else ''}{suffix}")


def describe_unrecognised(head: bytes) -> str:
    """What a file libsndfile did not recognise looks like, from its first bytes."""
    if not head:
        return "not audio: the file is empty"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        # Only a multi-byte character cut by the sniffing window's end is forgiven, not a short binary file.
        cut = len(head) >= SNIFF_BYTES and e.start >= len(head) - 4
        text = head[: e.start].decode("utf-8") if cut else None
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        shown = " ".join(text.split())[:40]
        return f"not audio but a text file (it begins {shown!r})"
    return f"not in an audio format libsndfile reads (MP3, WAV, FLAC, OGG); it begins with bytes {head[:8].hex(' ')}"


def _head(source: str | BinaryIO) -> bytes | None:
    """The first ``SNIFF_BYTES`` of a path or a seekable file object, or None if they cannot be read."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                return f.read(SNIFF_BYTES)
        source.seek(0)
        return source.read(SNIFF_BYTES)
    except (OSError, ValueError, AttributeError):
        return None


def _is_empty(source: str | BinaryIO) -> bool:
    """Whether a path or a seekable file object holds 0 bytes (asked only after libsndfile refused it)."""
    try:
        if isinstance(source, str):
            return os.path.getsize(source) == 0
        source.seek(0, os.SEEK_END)
        return source.tell() == 0
    except (OSError, ValueError, AttributeError):
        return False


def check_length(frames: int, source_rate: int, channels: int, sample_rate: int, max_seconds: float,
                 name: str) -> None:
    """Refuses, from the header alone, audio longer than ``max_seconds`` or too big to decode.

    Raises:
      AudioError: ``too_long``, naming the file, its duration and the limit.
    """
    seconds = frames / max(1, source_rate)
    if seconds > max_seconds:
        raise AudioError(TOO_LONG, f"{name}: {seconds:,.1f} s (header: {frames:,} frames at {source_rate} Hz), "
                                   f"over the {max_seconds:g} s limit")
    decoded_bytes = 4 * frames * channels + 4 * int(seconds * sample_rate)
    limit = 4 * int(max_seconds * max(sample_rate, 48000)) * max(2, channels)
    if decoded_bytes > limit:
        raise AudioError(TOO_LONG, f"{name}: would decode to {decoded_bytes / 2**20:,.0f} MiB "
                                   f"({channels} channels at {source_rate} Hz), over the limit")


def read_audio_file(path: str, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Reads and decodes a local audio file (see ``decode_audio``).

    Only regular files are opened (a FIFO would hang, ``/dev/zero`` never
    ends) and no more than ``MAX_FILE_BYTES`` are read.

    Raises:
      AudioError: ``missing_file``, ``unreadable_file``, ``not_a_file``,
        ``too_long``, else as ``decode_audio``.
    """
    return decode_audio(read_local_bytes(path), sample_rate, path, max_seconds)


def check_local_file(path: str) -> os.stat_result:
    """Stats a local path that is about to be opened as audio.

    Only regular files pass: a FIFO would hang the reader and ``/dev/zero``
    never ends.

    Raises:
      AudioError: ``missing_file``, ``unreadable_file`` (permissions, I/O) or ``not_a_file``.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AudioError(MISSING_FILE, f"{path}: no such file") from None
    except OSError as e:
        raise AudioError(UNREADABLE_FILE, f"{path}: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise AudioError(NOT_A_FILE, f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise AudioError(UNREADABLE_FILE, f"{path}: permission denied")
    return info


READ_PIECE_BYTES = 2**20  # what read_capped asks for at a time where the size is unknown


def read_capped(f: BinaryIO, size_hint: int = READ_PIECE_BYTES) -> bytes:
    """An open file's bytes, at most ``MAX_FILE_BYTES + 1`` (one more says it is too long).

    ``f.read(n)`` reserves ``n`` bytes before it reads: one call for the cap
    mapped (and unmapped) 128 MiB per ~50 KB clip, 64% of a worker's peak heap
    (memray, WORKSPACE.md). Reading ``size_hint + 1`` bytes first, then pieces,
    reserves what the file holds.

    Args:
      f: a binary file object.
      size_hint: the expected size (a local file's ``st_size``); a file that
        grew since is read on in ``READ_PIECE_BYTES`` pieces.
    """
    pieces, total, want = [], 0, min(size_hint, MAX_FILE_BYTES) + 1
    while total <= MAX_FILE_BYTES:
        piece = f.read(want)
        pieces.append(piece)
        total += len(piece)
        if len(piece) < want:  # a buffered file reads short only at its end
            break
        want = min(READ_PIECE_BYTES, MAX_FILE_BYTES + 1 - total)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def read_local_bytes(path: str) -> bytes:
    """A local regular file's bytes, at most ``MAX_FILE_BYTES``.

    Raises:
      AudioError: as ``check_local_file``, or ``too_long``.
    """
    info = check_local_file(path)
    if info.st_size > MAX_FILE_BYTES:
        raise AudioError(TOO_LONG, f"{path}: {info.st_size / 2**20:,.0f} MiB, over the "
                                   f"{MAX_FILE_BYTES / 2**20:,.0f} MiB a clip may have")
    try:
        with open(path, "rb") as f:
            return read_capped(f, info.st_size)
    except OSError as e:  # permissions, I/O errors
        raise AudioError(UNREADABLE_FILE, f"{path}: {e.strerror or e}") from None
