"""inaSpeechSegmenter 0.6.8's own log mel function, loaded from the pinned wheel: the peer of ``features.INA_MEL``.

A benchmark dependency only (``benchmarks.ina_features``): the wheel is
downloaded at build time, its module imported from its file, never shipped or
imported by the package.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import zipfile

import numpy as np

WHEEL = "inaSpeechSegmenter==0.6.8"


def fetch_wheel(directory: str) -> str | None:
    """``pip download --no-deps`` of the pinned wheel into ``directory``; its path, or None offline."""
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", directory, WHEEL],
                          capture_output=True, text=True)
    found = [f for f in os.listdir(directory) if f.endswith(".whl")]
    return os.path.join(directory, found[0]) if proc.returncode == 0 and found else None


@contextlib.contextmanager
def _numpy_spellings_of_2021():
    """``numpy.lib.pad`` and ``numpy.int``, which sidekit_mfcc uses and numpy 2 removed, for one call."""
    added = []
    if not hasattr(np.lib, "pad"):
        np.lib.pad = np.pad
        added.append((np.lib, "pad"))
    if "int" not in np.__dict__:
        np.int = int
        added.append((np, "int"))
    try:
        yield
    finally:
        for module, name in added:
            delattr(module, name)


def load_peer(wheel: str, directory: str):
    """The wheel's ``sidekit_mfcc`` module, imported from its file (not the package: it imports TensorFlow)."""
    with zipfile.ZipFile(wheel) as z:
        path = z.extract("inaSpeechSegmenter/sidekit_mfcc.py", directory)
    spec = importlib.util.spec_from_file_location("ina_sidekit_mfcc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peer_log_mel(peer, wave: np.ndarray) -> np.ndarray:
    """The wheel's log mel of a 16 kHz float32 waveform, as ina's ``_wav2feats`` calls it."""
    with _numpy_spellings_of_2021(), np.errstate(divide="ignore"):
        return peer.mfcc(wave.astype(np.float32), get_mspec=True)[3]
