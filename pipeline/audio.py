"""Decoding audio bytes to mono float32 waveforms at a target sample rate.

libsndfile (through ``soundfile``) decodes MP3, WAV, FLAC and OGG; ``soxr``
resamples. WORKSPACE.md records why not tensorflow-io (abandoned, fails to
load on TF >= 2.18, and measured slower).
"""

from __future__ import annotations

import io

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
NON_FINITE = "non_finite"


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


def decode_audio(data: bytes, sample_rate: int, name: str = "<bytes>") -> np.ndarray:
    """Decodes an encoded audio file to a mono waveform.

    Args:
      data: the file's bytes (any format libsndfile reads).
      sample_rate: the rate to resample to, in Hz.
      name: the file's name, for error messages.

    Returns:
      float32 [samples] in [-1, 1] at ``sample_rate``.

    Raises:
      AudioError: with reason ``empty_file``, ``undecodable``, ``no_audio`` or
        ``non_finite`` (a float file holding inf or NaN samples: one such clip
        would turn every normalization statistic into NaN).
    """
    if not data:
        raise AudioError(EMPTY_FILE, f"{name} is empty (0 bytes)")
    try:
        audio, source_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises several types for bad input
        reason = getattr(e, "error_string", None) or str(e)
        raise AudioError(UNDECODABLE, f"{name}: libsndfile: {reason}") from None
    if audio.shape[0] == 0:
        raise AudioError(NO_AUDIO, f"{name} decodes to 0 samples")
    if not np.isfinite(audio).all():
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AudioError(NON_FINITE, f"{name}: {bad} of {audio.size} samples are inf or NaN")
    # Downmix by averaging channels, the usual convention (keeps the level).
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def read_audio_file(path: str, sample_rate: int) -> np.ndarray:
    """Reads and decodes a local audio file (see ``decode_audio``).

    Raises:
      AudioError: ``missing_file`` if it cannot be opened, else as decode_audio.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AudioError(MISSING_FILE, f"{path}: {e.strerror or e}") from None
    return decode_audio(data, sample_rate, path)
