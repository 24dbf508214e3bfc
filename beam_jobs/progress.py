"""Progress of a long run: clips done out of the total, clips per second, an ETA.

Workers count with Beam counters (``voicegender:clips_decoded``,
``clips_failed``, ``clips_to_decode``), which Dataflow shows live. A local
runner reports counters only when the job ends, so on a local run each
worker's DoFn also writes its counts to a small file in a local progress
directory (at most once a second), and ``ProgressReporter``, a thread in the
launcher, sums the files: a live line on a terminal, a log line about every
10 s otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import TextIO

from apache_beam.metrics import Metrics

from beam_jobs.rejections import NAMESPACE
from pipeline import console

CLIPS_TO_DECODE = "clips_to_decode"
CLIPS_DECODED = "clips_decoded"
CLIPS_FAILED = "clips_failed"  # rejected while decoding (missing, corrupt, silent, ...)
SHARDS_WRITTEN = "shards_written"
SHARDS_PLANNED = "shards_planned"
_WRITE_EVERY_S = 1.0


def count_to_decode(total: int) -> int:
    """Publishes the decoding total as a counter (Dataflow shows it beside ``clips_decoded``)."""
    Metrics.counter(NAMESPACE, CLIPS_TO_DECODE).inc(total)
    return total


class ProgressFile:
    """One DoFn instance's counts, written atomically to ``<dir>/<uuid>.json``.

    A no-op without a directory (remote runners: the Beam counters do the job).
    """

    def __init__(self, progress_dir: str | None):
        self._path = os.path.join(progress_dir, uuid.uuid4().hex + ".json") if progress_dir else None
        self._counts: dict[str, int] = {}
        self._last_write = 0.0

    def set(self, name: str, value: int) -> None:
        self._counts[name] = int(value)

    def add(self, name: str, n: int = 1) -> None:
        self._counts[name] = self._counts.get(name, 0) + n
        if time.monotonic() - self._last_write >= _WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self._path is None or not self._counts:
            return
        tmp = self._path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self._counts, f)
            os.replace(tmp, self._path)  # readers never see half a file
        except OSError:
            pass  # progress is best effort; the job's work is not
        self._last_write = time.monotonic()


def read_counts(progress_dir: str) -> dict[str, int]:
    """Sums every worker's counts; totals (``*_to_*``, ``*_planned``) are shared, so their max."""
    totals: dict[str, int] = {}
    try:
        names = os.listdir(progress_dir)
    except OSError:
        return totals
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(progress_dir, name)) as f:
                counts = json.load(f)
        except (OSError, ValueError):
            continue  # being replaced right now; next tick
        for key, value in counts.items():
            shared = key in (CLIPS_TO_DECODE, SHARDS_PLANNED)
            totals[key] = max(totals.get(key, 0), value) if shared else totals.get(key, 0) + value
    return totals


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe(counts: dict[str, int], elapsed_s: float, decode_started_s: float | None, now_s: float) -> str:
    """One progress line from summed counts.

    Args:
      counts: summed worker counts.
      elapsed_s: seconds since the job started.
      decode_started_s: when the first decoded clip was seen (None: not yet).
      now_s: the current time on the same clock as ``decode_started_s``.
    """
    total = counts.get(CLIPS_TO_DECODE, 0)
    done = counts.get(CLIPS_DECODED, 0) + counts.get(CLIPS_FAILED, 0)
    if not done:
        return f"[{format_duration(elapsed_s)}] reading and planning clips"
    parts = [f"[{format_duration(elapsed_s)}] decoded {done:,}/{total:,} clips"]
    if total:
        parts[0] += f" ({100.0 * done / total:.0f}%)"
    if counts.get(CLIPS_FAILED):
        parts.append(f"{counts[CLIPS_FAILED]:,} rejected")
    if decode_started_s is not None and now_s > decode_started_s:
        rate = done / (now_s - decode_started_s)
        parts.append(f"{rate:,.1f} clips/s")
        if total and done < total and rate > 0:
            parts.append(f"ETA {format_duration((total - done) / rate)}")
    planned = counts.get(SHARDS_PLANNED, 0)
    if planned:
        parts.append(f"shards written {counts.get(SHARDS_WRITTEN, 0)}/{planned}")
    return ", ".join(parts)


class ProgressReporter:
    """Prints the summed progress of a local run while it works.

    On a terminal the line is rewritten in place every ``tty_interval_s``;
    otherwise it is logged every ``log_interval_s``. ``stop()`` prints the
    final line and removes the directory.
    """

    def __init__(self, stream: TextIO | None = None, log_interval_s: float = 10.0, tty_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.progress_dir = tempfile.mkdtemp(prefix="voicegender_progress_")
        self._stream = stream or console.terminal()
        self._live = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = tty_interval_s if self._live else log_interval_s
        self._clock = clock
        self._start = clock()
        self._decode_started: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def start(self) -> ProgressReporter:
        self._thread.start()
        return self

    def line(self) -> str:
        now = self._clock()
        counts = read_counts(self.progress_dir)
        if self._decode_started is None and counts.get(CLIPS_DECODED, 0) + counts.get(CLIPS_FAILED, 0):
            # The first clips are seen up to one write interval late; start the rate's clock then.
            self._decode_started = now - _WRITE_EVERY_S
        return describe(counts, now - self._start, self._decode_started, now)

    def _emit(self, text: str, final: bool = False) -> None:
        if self._live:
            self._stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
            self._stream.flush()
        else:
            logging.info("Progress: %s", text)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._emit(self.line())

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._emit(self.line(), final=True)
        for name in os.listdir(self.progress_dir):
            try:
                os.remove(os.path.join(self.progress_dir, name))
            except OSError:
                pass
        try:
            os.rmdir(self.progress_dir)
        except OSError:
            pass
