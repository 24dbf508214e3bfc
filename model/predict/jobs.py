"""``predict --jobs N``: files classified in N worker processes, results still in input order.

Each worker is a fresh (spawned) interpreter that loads the model once; the
parent keeps at most ``chunk`` files in flight and yields their results in
the order the files were given, so the output, the exit status and the
memory bound are those of ``--jobs=1``. Spawned, not forked: the parent has
onnxruntime and LiteRT threads running, which a fork would copy mid-flight.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
from collections.abc import Iterable, Iterator

_WORKER: dict = {}  # this process's classifier and per-file function (set by _start in each worker)


def _start(model_dir: str | None, vad: str, segmented: bool) -> None:
    from model.predict import segments
    from model.predict.classifier import Classifier

    _WORKER["fn"] = segments.file_function(Classifier(model_dir), vad, segmented)


def _one(path: str):
    return _WORKER["fn"](path)


def map_in_processes(paths: Iterable[str], jobs: int, chunk: int, model_dir: str | None, vad: str,
                     segmented: bool) -> Iterator:
    """Each path's ``Prediction`` (or ``FileSegments`` when ``segmented``), in input order, from ``jobs`` processes.

    Raises:
      ValueError: ``jobs`` or ``chunk`` below 1.
    """
    if jobs < 1 or chunk < 1:
        raise ValueError(f"jobs and chunk must be >= 1, got jobs={jobs}, chunk={chunk}")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start,
                                                initargs=(model_dir, vad, segmented)) as pool:
        it = iter(paths)
        while batch := list(itertools.islice(it, chunk)):
            yield from pool.map(_one, batch, chunksize=max(1, len(batch) // (4 * jobs)))
