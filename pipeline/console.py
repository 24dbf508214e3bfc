"""A clean console: TensorFlow's C++ start-up lines filtered out of stderr, real errors kept.

Every process that imports TensorFlow (a training or export main, and its
children) prints a few lines before absl logging is even initialised: no CUDA driver,
``cuInit`` failed, oneDNN is on, the CPU could use AVX2. They cannot be turned
off by ``TF_CPP_MIN_LOG_LEVEL`` without also hiding real errors, so the mains
route file descriptor 2 through a filter that drops exactly those lines. Child
processes (Beam's workers) inherit the filtered descriptor. Anything else,
tracebacks and TensorFlow errors included, passes through unchanged.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from typing import TextIO

# Each pattern is one start-up line TensorFlow prints on a machine without a GPU.
STARTUP_NOISE = re.compile(
    "|".join((
        r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
        r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
        r"cuda_platform\.cc:\d+\] failed call to cuInit",
        r"cuda_(executor|diagnostics)\.cc:\d+\]",
        r"Unable to register cu(DNN|FFT|BLAS) factory",
        r"computation_placer\.cc:\d+\] computation placer already registered",
        r"oneDNN custom operations are on",
        r"This TensorFlow binary is optimized to use available CPU instructions",
        r"^To enable the following instructions: .*rebuild TensorFlow",
        r"TF-TRT Warning: Could not find TensorRT",
    ))
)

_state: dict = {}


def is_noise(line: str) -> bool:
    """True for a TensorFlow start-up line that says nothing about the job."""
    return bool(STARTUP_NOISE.search(line))


def _pump(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not is_noise(line.decode("utf-8", "replace")):
                    os.write(write_fd, line + b"\n")
        if pending and not is_noise(pending.decode("utf-8", "replace")):
            os.write(write_fd, pending)


def silence_tensorflow_startup() -> None:
    """Filters TensorFlow's start-up lines from this process's stderr and its children's.

    Call first thing in a main, before TensorFlow is imported. Idempotent.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _state:
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, original), name="stderr-filter", daemon=True)
    thread.start()
    _state.update(original=original, thread=thread)
    atexit.register(_restore)


def _restore() -> None:
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(_state["original"], 2)  # closes our end of the pipe: the filter sees EOF
    _state["thread"].join(timeout=2.0)


def terminal() -> TextIO:
    """The real stderr (for live progress lines, which the line filter would hold back)."""
    if not _state:
        return sys.stderr
    if "terminal" not in _state:
        _state["terminal"] = os.fdopen(os.dup(_state["original"]), "w", buffering=1)
    return _state["terminal"]
