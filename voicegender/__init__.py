"""voicegender: is a voice male or female? For clips, recordings of any length, and whole releases.

    import voicegender

    clf = voicegender.load()                    # the shipped model (or load("runs/cnn"))
    r = clf.classify("interview.mp3")           # a path, or a waveform: clf.classify(samples, sample_rate=44100)
    print(r.gender, r.p_female, r.duration_s, r.speech_s)
    for s in clf.segments("meeting.wav"):       # speech turns with a gender; silence and music without one
        print(s.start_s, s.end_s, s.kind, s.gender)

The API is the predictor of ``voicegender predict`` (TensorFlow-free: LiteRT
and onnxruntime), so both give the same answers; a file it cannot classify
raises ``ClassificationError`` with the reason ``predict`` prints.
"""

from __future__ import annotations

from voicegender.api import ClassificationError, Result, VoiceGender, load

__all__ = ["ClassificationError", "Result", "VoiceGender", "load", "__version__"]


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("voicegender")
    except metadata.PackageNotFoundError:  # a checkout used without installing it
        return "0+unknown"


__version__ = _version()
