"""The Python API: the same answers as ``voicegender predict`` for paths and waveforms, predict's reasons as errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

import voicegender
from tests.helpers import generated_voice, run_module


def _voice(male: bool, seconds: float, rate: int, seed: int) -> np.ndarray:
    return generated_voice(male, seconds, seed, rate)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    paths = {}
    for name, male, rate in (("man.wav", True, 44100), ("woman.flac", False, 16000)):
        paths[name] = str(d / name)
        soundfile.write(paths[name], _voice(male, 3.0, rate, len(paths) + 1), rate)
    paths["short.wav"] = str(d / "short.wav")
    soundfile.write(paths["short.wav"], _voice(True, 0.4, 16000, 9), 16000)
    return paths


@pytest.fixture(scope="module")
def shipped():
    return voicegender.load()


def test_classify_a_path_gives_what_predict_prints(shipped, clips):
    proc = run_module("model.predict", "--format=jsonl", clips["man.wav"], clips["woman.flac"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    for record in printed:
        r = shipped.classify(record["path"])
        assert (r.path, r.gender) == (record["path"], record["gender"])
        assert r.p_female == pytest.approx(record["p_female"], abs=1e-6)
        assert r.duration_s == pytest.approx(record["duration_s"], abs=1e-3)
        assert r.speech_s == pytest.approx(record["speech_s"], abs=1e-3)
        assert r.confidence == max(r.p_female, 1 - r.p_female)


def test_a_waveform_at_its_own_rate_is_the_file(shipped, clips):
    samples, rate = soundfile.read(clips["man.wav"], dtype="float32")
    from_file, from_waveform = shipped.classify(clips["man.wav"]), shipped.classify(samples, sample_rate=rate)
    assert from_waveform.path == "<waveform>"
    assert from_waveform.p_female == pytest.approx(from_file.p_female, abs=1e-6)
    assert from_waveform.duration_s == pytest.approx(from_file.duration_s, abs=1e-3)
    stereo = np.stack([samples, samples], axis=1)  # downmixed by averaging, as files are
    assert shipped.classify(stereo, sample_rate=rate).p_female == pytest.approx(from_file.p_female, abs=1e-6)


def test_whole_file_verdicts_and_segments(clips):
    whole = voicegender.load(vad="none").classify(clips["woman.flac"])
    assert whole.speech_s is None and whole.gender in ("male", "female")
    segments = voicegender.load().segments(clips["woman.flac"])
    assert segments and segments[0].start_s == 0.0 and segments[-1].end_s == pytest.approx(3.0, abs=0.02)
    assert all(s.gender in ("male", "female") for s in segments if s.kind == "speech")
    assert all(s.gender is None for s in segments if s.kind != "speech")
    with pytest.raises(ValueError, match="segments need a speech detector"):
        voicegender.load(vad="none").segments(clips["woman.flac"])


def test_errors_carry_predicts_reasons(shipped, clips, tmp_path):
    cases = {clips["short.wav"]: "too_short", str(tmp_path / "nowhere.wav"): "missing_file"}
    for path, reason in cases.items():
        with pytest.raises(voicegender.ClassificationError) as e:
            shipped.classify(path)
        assert (e.value.path, e.value.reason) == (path, reason)
        proc = run_module("model.predict", "--format=jsonl", path)
        assert json.loads(proc.stdout)["error"] == str(e.value)
    bad = np.zeros(32000, np.float32)
    bad[16000] = np.nan
    with pytest.raises(voicegender.ClassificationError, match="non_finite: inf or NaN samples, the first at 1.00 s"):
        shipped.classify(bad, sample_rate=16000)
    with pytest.raises(voicegender.ClassificationError, match="needs its sample_rate"):
        shipped.classify(bad)
    with pytest.raises(voicegender.ClassificationError, match="silent"):
        shipped.classify(np.zeros(48000, np.float32), sample_rate=16000)
    with pytest.raises(voicegender.ClassificationError, match="got shape"):
        shipped.classify(np.zeros((100, 0), np.float32), sample_rate=16000)
    with pytest.raises(ValueError, match="vad='loud'"):
        voicegender.load(vad="loud")
