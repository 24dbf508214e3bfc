"""Peer baseline: inaSpeechSegmenter's male/female decision per clip, as JSON lines.

Runs in its own virtualenv (``.venv-ina/``, built by ``benchmarks/peers/setup_ina.sh``), never in the project's:
it imports nothing from the project. Usage::

    .venv-ina/bin/python benchmarks/peers/ina_peer.py < paths.txt > results.jsonl

Each input line is one audio path; each gives one JSON object on stdout, in input order, flushed at once::

    {"path": ..., "gender": "male"|"female"|null, "p_female": x|null, "speech_s": x, "error": null|"reason: detail"}

``p_female`` is inaSpeechSegmenter's female speech seconds over its male + female speech seconds, and ``gender``
the label with the majority of that speech time. The audio is decoded with soundfile, mixed to mono and resampled
to 16 kHz with soxr here (no ffmpeg needed), then fed as an array to inaSpeechSegmenter 0.8.0's own features and
``Segmenter.segment_feats`` (speech/music/noise VAD, then the gender CNN).

Offline: the Keras weights must already be in ``$KERAS_HOME/inaSpeechSegmenter/``; when KERAS_HOME is unset it is
set to ``<sys.prefix>/keras_home`` or else ``<repo>/.venv-ina/keras_home``. A missing weight file is an error at
start-up (exit 2) instead of a download. Everything TensorFlow and Keras print goes to stderr (and is mostly
silenced), so stdout carries only the JSON lines.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SAMPLE_RATE = 16_000
WEIGHT_FILES = ("keras_speech_music_noise_cnn.hdf5", "keras_male_female_cnn.hdf5")
# inaSpeechSegmenter's models look at 68 frames of 10 ms; shorter inputs are padded (as in its _media2feats).
MIN_FRAMES = 68


def default_keras_home() -> Path:
    """Returns the KERAS_HOME that holds the weights when the caller set none.

    Returns:
        ``<sys.prefix>/keras_home`` when it holds the gender weights (the script runs from ``.venv-ina``),
        else ``<repo root>/.venv-ina/keras_home`` (the repo root being two levels above this file).
    """
    candidates = [Path(sys.prefix) / "keras_home", Path(__file__).resolve().parents[2] / ".venv-ina" / "keras_home"]
    for candidate in candidates:
        if (candidate / "inaSpeechSegmenter" / WEIGHT_FILES[-1]).is_file():
            return candidate
    return candidates[-1]


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Sends file descriptor 2 to /dev/null for the duration (TensorFlow's C++ start-up lines ignore Python)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def json_output() -> IO[str]:
    """Reserves the real stdout for the JSON lines and points fd 1 and ``sys.stdout`` at stderr.

    Keras prints progress bars to stdout; after this call they land on stderr and cannot corrupt the output.

    Returns:
        A line-buffered text stream on the original stdout.
    """
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def load_segmenter() -> Any:
    """Loads inaSpeechSegmenter's Segmenter (VAD 'smn' + gender) from the cached weights, without ffmpeg.

    Returns:
        An ``inaSpeechSegmenter.Segmenter`` whose Keras ``predict`` calls print nothing.

    Raises:
        FileNotFoundError: a weight file is missing from ``$KERAS_HOME/inaSpeechSegmenter/``.
    """
    weights = Path(os.environ["KERAS_HOME"]) / "inaSpeechSegmenter"
    missing = [name for name in WEIGHT_FILES if not (weights / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {weights}; run benchmarks/peers/setup_ina.sh")
    with silenced_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from inaSpeechSegmenter import Segmenter

        segmenter = Segmenter(vad_engine="smn", detect_gender=True, ffmpeg=None)
    for net in (segmenter.vad, segmenter.gender):
        net.nn.predict = _quiet_predict(net.nn.predict)
    return segmenter


def _quiet_predict(predict: Any) -> Any:
    """Wraps a Keras ``Model.predict`` so that it never prints its progress line.

    Args:
        predict: the bound ``predict`` method.

    Returns:
        The same call with ``verbose=0``.
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        kwargs["verbose"] = 0
        return predict(*args, **kwargs)

    return wrapped


def load_audio(path: str) -> Any:
    """Decodes a file to a mono float32 signal at 16 kHz.

    Args:
        path: any file that soundfile (libsndfile) reads: WAV, FLAC, OGG, MP3.

    Returns:
        A 1-D float32 numpy array at 16 kHz.
    """
    import numpy as np
    import soundfile as sf
    import soxr

    signal, rate = sf.read(path, dtype="float32", always_2d=True)
    signal = signal.mean(axis=1)
    if rate != SAMPLE_RATE:
        signal = soxr.resample(signal, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(signal, dtype=np.float32)


def segment(segmenter: Any, signal: Any) -> list[tuple[str, float, float]]:
    """Runs inaSpeechSegmenter on a 16 kHz signal, as its ``Segmenter.__call__`` does on a file.

    Args:
        segmenter: from ``load_segmenter``.
        signal: mono float32 samples at 16 kHz.

    Returns:
        Its segments ``(label, start_s, stop_s)``; labels are male, female, noise, music or noEnergy.
    """
    import numpy as np
    from inaSpeechSegmenter.sidekit_mfcc import mfcc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, loge, _, mspec = mfcc(signal, get_mspec=True)
    difflen = 0
    if len(loge) < MIN_FRAMES:
        difflen = MIN_FRAMES - len(loge)
        mspec = np.concatenate((mspec, np.ones((difflen, 24)) * np.min(mspec)))
    return segmenter.segment_feats(mspec, loge, difflen, 0)


def decide(segments: list[tuple[str, float, float]]) -> dict[str, Any]:
    """Turns segments into the clip's gender by majority of male vs female speech time.

    Args:
        segments: ``(label, start_s, stop_s)`` from ``segment``.

    Returns:
        ``gender``, ``p_female``, ``speech_s`` and ``error`` (no speech found, or an exact tie).
    """
    seconds: dict[str, float] = {}
    for label, start, stop in segments:
        seconds[label] = seconds.get(label, 0.0) + (stop - start)
    female, male = seconds.get("female", 0.0), seconds.get("male", 0.0)
    speech = female + male
    result: dict[str, Any] = {"gender": None, "p_female": None, "speech_s": round(speech, 3), "error": None}
    if speech <= 0:
        labels = ", ".join(f"{label} {s:.2f}s" for label, s in sorted(seconds.items())) or "no segments"
        result["error"] = f"no_speech: no male or female segment ({labels})"
        return result
    result["p_female"] = round(female / speech, 6)
    if female == male:
        result["error"] = f"tie: {female:.2f}s female = {male:.2f}s male"
    else:
        result["gender"] = "female" if female > male else "male"
    return result


def classify(segmenter: Any, path: str) -> dict[str, Any]:
    """Classifies one file; never raises.

    Args:
        segmenter: from ``load_segmenter``.
        path: the audio file.

    Returns:
        The JSON object for this path.
    """
    empty: dict[str, Any] = {"path": path, "gender": None, "p_female": None, "speech_s": None, "error": None}
    if not path:
        return {**empty, "error": "bad_input: empty line"}
    try:
        signal = load_audio(path)
    except Exception as exc:  # any decode failure is a per-clip error
        return {**empty, "error": f"decode_error: {type(exc).__name__}: {exc}"}
    if signal.size == 0:
        return {**empty, "error": "empty_audio: 0 samples"}
    try:
        segments = segment(segmenter, signal)
    except Exception as exc:  # any model failure is a per-clip error
        return {**empty, "error": f"segment_error: {type(exc).__name__}: {exc}"}
    return {"path": path, **decide(segments)}


def main() -> int:
    """Reads paths from stdin and writes one JSON line per path to stdout.

    Returns:
        0, or 2 when the model cannot be loaded.
    """
    os.environ.setdefault("KERAS_HOME", str(default_keras_home()))
    out = json_output()
    try:
        segmenter = load_segmenter()
    except Exception as exc:  # reported, then exit 2
        print(f"ina_peer: cannot load inaSpeechSegmenter: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    # inaSpeechSegmenter calls gc.collect() after every predict; with TensorFlow loaded each full collection walks
    # millions of long-lived objects (~0.25 s). Freezing them (and each clip's survivors) halves the run time and
    # changes no result: the cyclic garbage of each clip is still collected by those gc.collect() calls.
    gc.freeze()
    for line in sys.stdin:
        path = line.rstrip("\r\n").strip()
        out.write(json.dumps(classify(segmenter, path), ensure_ascii=False) + "\n")
        out.flush()
        gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
