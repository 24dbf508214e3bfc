"""model.predict.segments and predict --segments: speech turns with genders, non-speech without one."""

import json
import os

import numpy as np
import pytest
import soundfile

from model.predict import classifier, segments
from tests.helpers import generated_voice, run_module

RATE = 16000
# The segmenter's logic is tested with the energy detector: deterministic on synthetic voices, which Silero
# (trained on real speech) hears less surely. The detectors themselves are tested in test_vad.py.
ENERGY = segments.SegmentConfig(method="energy")


def _voice(male: bool, seconds: float, seed: int) -> np.ndarray:
    return generated_voice(male, seconds, seed, RATE)


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """male 0-4 s, silence 4-5.5 s, female 5.5-9.5 s, silence 9.5-11 s, male 11-15 s; and its file."""
    quiet = np.zeros(int(1.5 * RATE), np.float32)
    # Voices (seeds) that talk without a pause from start to end, so the truth is their whole span.
    parts = [_voice(True, 4.0, 4), quiet, _voice(False, 4.0, 10), quiet, _voice(True, 4.0, 11)]
    waveform = np.concatenate(parts)
    path = str(tmp_path_factory.mktemp("seg") / "conversation.wav")
    soundfile.write(path, waveform, RATE)
    truth = [(0.0, 4.0, "male"), (5.5, 9.5, "female"), (11.0, 15.0, "male")]
    return waveform, path, truth


@pytest.fixture(scope="module")
def lite():
    return classifier.Classifier()


def _check(found, truth):
    speech = [s for s in found if s.kind == segments.SPEECH]
    assert [s.gender for s in speech] == [gender for _, _, gender in truth]
    for s, (start, end, _) in zip(speech, truth, strict=True):
        assert abs(s.start_s - start) < 0.35 and abs(s.end_s - end) < 0.35, (s, start, end)
        assert 0.0 <= s.p_female <= 1.0
    gaps = [s for s in found if s.kind != segments.SPEECH]
    assert gaps and all(s.gender is None and s.p_female is None and s.kind == segments.SILENCE for s in gaps)
    # Consecutive, covering the whole recording.
    assert found[0].start_s == 0.0 and all(a.end_s == pytest.approx(b.start_s) for a, b in zip(found, found[1:], strict=False))


def test_turns_get_their_gender_and_pauses_none(conversation, lite):
    waveform, _, truth = conversation
    found = list(segments.Segmenter(lite, ENERGY).segments([waveform]))
    _check(found, truth)
    assert found[-1].end_s == pytest.approx(len(waveform) / RATE)


def test_streaming_windows_give_the_same_segments(conversation, lite):
    waveform, _, truth = conversation
    # Windows of 5 s (with turns crossing them) and ragged chunks: the same turns come out.
    config = segments.SegmentConfig(method="energy", window_s=5.0, max_segment_s=4.5)
    found = list(segments.Segmenter(lite, config).segments(np.array_split(waveform, 13)))
    _check(found, truth)


# Not webrtc: its GMM hears the chord as speech (the VAD benchmark measures it on music interludes).
@pytest.mark.parametrize("method", ["energy", "silero"])
def test_noise_and_music_get_no_gender(lite, method):
    rng = np.random.default_rng(0)
    t = np.arange(3 * RATE) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.003  # -55 dBFS: a quiet room's radio
    hiss = rng.normal(0, 10 ** (-70 / 20), 2 * RATE)  # -70 dBFS: below the silence floor
    waveform = np.concatenate([_voice(False, 4.0, 10), hiss, chord, hiss]).astype(np.float32)
    found = list(segments.Segmenter(lite, segments.SegmentConfig(method=method)).segments([waveform]))
    speech = [s for s in found if s.kind == segments.SPEECH]
    assert len(speech) == 1 and speech[0].gender == "female" and speech[0].end_s < 4.5
    rest = [s for s in found if s.start_s >= speech[0].end_s]
    assert rest and rest[-1].end_s == pytest.approx(len(waveform) / RATE)
    assert all(s.kind != segments.SPEECH and s.gender is None and s.p_female is None for s in rest)


def test_config_is_checked():
    with pytest.raises(ValueError, match="unknown speech detection method"):
        segments.SegmentConfig(method="psychic")
    with pytest.raises(ValueError, match="max_segment_s"):
        segments.SegmentConfig(window_s=10.0, max_segment_s=20.0)


def test_predict_segments_jsonl_schema_and_errors(conversation, tmp_path):
    _, path, truth = conversation
    missing = str(tmp_path / "nowhere.wav")
    proc = run_module("model.predict", "--segments", "--vad=energy", "--format=jsonl", path, missing,
                      env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120)
    assert proc.returncode == 1 and "1 of 2 files failed" in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert records[-1] == {"path": missing, "error": f"missing_file: {missing}: no such file"}
    speech = [r for r in records[:-1] if r["kind"] == "speech"]
    assert [r["gender"] for r in speech] == [g for _, _, g in truth]
    for r in records[:-1]:
        assert r["path"] == path
        expected = {"path", "start_s", "end_s", "duration_s", "kind"} | (
            {"gender", "p_female"} if r["kind"] == "speech" else set())
        assert set(r) == expected and r["duration_s"] == pytest.approx(r["end_s"] - r["start_s"], abs=2e-3)
    text = run_module("model.predict", "--segments", path, env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120)
    assert text.returncode == 0 and text.stdout.splitlines()[0].split() == [
        "start", "end", "kind", "gender", "p_female", "path"]
    assert os.path.basename(path) in text.stdout.splitlines()[1]


def test_a_turn_without_a_pause_is_split_where_the_voice_changes(lite):
    waveform = np.concatenate([_voice(True, 4.0, 4), _voice(False, 4.0, 10), _voice(True, 4.0, 11)])
    found = list(segments.Segmenter(lite, ENERGY).segments([waveform]))
    speech = [s for s in found if s.kind == segments.SPEECH]
    assert [s.gender for s in speech] == ["male", "female", "male"]
    assert abs(speech[0].end_s - 4.0) <= 0.5 and abs(speech[2].start_s - 8.0) <= 0.5
    assert speech[0].end_s == speech[1].start_s  # one stretch of talk, cut between the turns


def test_turn_starts_ignore_a_single_odd_block(lite):  # the HMM itself: test_smoothing.py
    segmenter = segments.Segmenter(lite, ENERGY)
    assert segmenter._turn_starts(np.array([0.1, 0.2, 0.9, 0.1, 0.2, 0.1])) == []  # one odd block: no turn
    assert segmenter._turn_starts(np.array([0.1, 0.2, 0.1, 0.9, 0.8, 0.9, 0.7])) == [3]


def _chord(seconds: float, dbfs: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    return (chord / np.sqrt(np.mean(chord**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def _wav(tmp_path, name: str, waveform: np.ndarray) -> str:
    path = str(tmp_path / name)
    soundfile.write(path, waveform, RATE)
    return path


def test_file_verdict_rests_on_speech_only(lite, tmp_path):
    voice = _voice(False, 4.0, 10)
    music = _chord(6.0, -20.0)  # louder than the voice, longer than it
    path = _wav(tmp_path, "talk_then_music.wav", np.concatenate([voice, music]))
    config = segments.SegmentConfig(method="silero")
    got = segments.speech_verdict(lite, path, config)
    assert got.error is None and got.gender == "female"
    assert got.duration_s == pytest.approx(10.0, abs=0.01)
    assert 3.0 <= got.speech_s <= 4.6  # the voice, not the music
    # The same verdict as the voice alone (the same verdict, so the same calibration): the music's blocks are
    # not averaged in.
    alone = segments.speech_verdict(lite, _wav(tmp_path, "talk.wav", voice), config)
    assert got.p_female == pytest.approx(alone.p_female, abs=0.05)
    whole = lite.classify_file(path)
    assert whole.speech_s is None and whole.duration_s == pytest.approx(10.0, abs=0.01)
    assert abs(whole.p_female - got.p_female) > 0.05  # the music does move a whole-file verdict


@pytest.mark.parametrize("name, waveform, reason", [
    ("music.wav", _chord(5.0, -20.0), "no_speech"),
    ("zeros.wav", np.zeros(5 * RATE, np.float32), "silent"),
    ("short.wav", _voice(True, 0.5, 4), "too_short"),
])
def test_file_verdict_refuses_files_without_speech(lite, tmp_path, name, waveform, reason):
    got = segments.speech_verdict(lite, _wav(tmp_path, name, waveform), segments.SegmentConfig(method="silero"))
    assert got.gender is None and got.reason == reason and got.error.startswith(reason)


def test_predict_segments_needs_a_speech_detector(conversation):
    proc = run_module("model.predict", "--segments", "--vad=none", conversation[1],
                      env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120)
    assert proc.returncode == 2 and "--segments needs a speech detector" in proc.stderr
