"""model.predict.batched: the default verdict with speech detection batched across files equals each file alone."""

import numpy as np
import pytest
import soundfile

from model.predict import batched, classifier, segments
from tests.helpers import generated_voice

RATE = 16000


def _voice(male: bool, seconds: float, seed: int) -> np.ndarray:
    return generated_voice(male, seconds, seed, RATE)


@pytest.fixture(scope="module")
def lite():
    return classifier.Classifier()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Voices of several lengths, a file longer than the test's window, silence, a missing and a broken file."""
    d = tmp_path_factory.mktemp("batched")
    waves = {"female.wav": _voice(False, 3.0, 10), "male.flac": _voice(True, 2.2, 4),
             "long_talk.wav": np.concatenate([_voice(True, 4.0, 11), np.zeros(RATE, np.float32),
                                              _voice(False, 4.0, 10)]),
             "silence.wav": np.zeros(3 * RATE, np.float32), "short.wav": _voice(True, 0.4, 4),
             "male_2.wav": _voice(True, 5.0, 11)}
    paths = []
    for name, wave in waves.items():
        soundfile.write(str(d / name), wave, RATE)
        paths.append(str(d / name))
    (d / "broken.mp3").write_bytes(b"ID3" + bytes(200))
    paths.insert(2, str(d / "missing.wav"))
    paths.insert(5, str(d / "broken.mp3"))
    return paths


# A 6 s window makes long_talk.wav (9 s) a long file, streamed alone; the others are batched.
CONFIG = segments.SegmentConfig(method="silero", window_s=6.0, max_segment_s=5.0)


@pytest.mark.parametrize("budget_s", [1.0, 4.0, 120.0])
def test_batched_verdicts_equal_each_file_alone(lite, files, budget_s):
    alone = [segments.speech_verdict(lite, path, CONFIG) for path in files]
    got = batched.speech_verdicts(lite, files, CONFIG, budget_s=budget_s)
    assert [p.path for p in got] == files
    for a, b in zip(alone, got, strict=True):
        assert (a.gender, a.reason, a.error, a.duration_s, a.speech_s) == (b.gender, b.reason, b.error,
                                                                          b.duration_s, b.speech_s)
        assert (a.p_female is None and b.p_female is None) or a.p_female == pytest.approx(b.p_female, abs=1e-6)
    reasons = {p.path.rsplit("/", 1)[-1]: p.reason for p in got}
    assert reasons["missing.wav"] and reasons["broken.mp3"] and reasons["silence.wav"] == "silent"
    assert reasons["short.wav"] == "too_short"
    assert {p.gender for p in got if p.error is None} == {"female", "male"}


def test_precomputed_frames_are_refused_for_a_long_recording(lite):
    wave = _voice(True, 7.0, 4)
    frames = np.ones(700, dtype=bool)
    with pytest.raises(ValueError, match="shorter than window_s"):
        list(segments.Segmenter(lite, CONFIG).segments([wave], frames))


def test_groups_and_which_modes_batch():
    assert list(batched.groups(iter("abcdefg"), 3)) == [list("abc"), list("def"), ["g"]]
    assert list(batched.groups([], 3)) == []
    assert batched.is_batched("silero", segmented=False)
    assert not batched.is_batched("silero", segmented=True) and not batched.is_batched("energy", segmented=False)


def test_speech_threshold_reaches_the_batched_and_the_streamed_detector(lite, files):
    # Only voices (the threshold changes speech time, not errors); long_talk.wav is streamed, the rest batched.
    voices = [p for p in files if p.endswith(("female.wav", "male.flac", "long_talk.wav", "male_2.wav"))]
    speech = {}
    for threshold in (0.9, 0.5, 0.2):
        config = segments.SegmentConfig(method="silero", window_s=6.0, max_segment_s=5.0, speech_threshold=threshold)
        got = batched.speech_verdicts(lite, voices, config)
        alone = [segments.speech_verdict(lite, path, config) for path in voices]
        assert [p.speech_s for p in got] == [p.speech_s for p in alone]
        speech[threshold] = [p.speech_s or 0.0 for p in got]
    # A lower threshold hears more of the generated voices (per file not strictly: regions are cut and bridged).
    assert sum(speech[0.9]) < sum(speech[0.5]) <= sum(speech[0.2])


@pytest.mark.parametrize("bad", [0.1, 1.5])
def test_speech_threshold_outside_its_range_is_refused(bad):
    with pytest.raises(ValueError, match="speech_threshold"):
        segments.SegmentConfig(speech_threshold=bad)
