"""model.predict.pooling: speaker verdicts shared by predict --speaker_from and label_clips."""

import pytest

from model.predict import pooling


def test_pool_means_clips_and_measures_agreement():
    verdict = pooling.pool("spk", [0.9, 0.8, 0.2, 0.7])
    assert verdict.clips == 4 and verdict.p_female == pytest.approx(0.65)
    assert verdict.gender == "female" and verdict.agreement == pytest.approx(0.75)
    assert verdict.confidence == pytest.approx(0.65)
    male = pooling.pool("m", [0.1, 0.6])
    assert male.gender == "male" and male.agreement == pytest.approx(0.5)


def test_speaker_pool_keeps_speakers_apart_and_refuses_non_finite():
    pool = pooling.SpeakerPool()
    for speaker, p in [("b", 0.1), ("a", 0.9), ("b", 0.3), ("a", 0.95)]:
        pool.add(speaker, p)
    verdicts = pool.verdicts()
    assert [v.speaker for v in verdicts] == ["a", "b"] and [v.clips for v in verdicts] == [2, 2]
    assert verdicts[1].p_female == pytest.approx(0.2) and verdicts[1].agreement == 1.0
    for bad in (float("nan"), float("inf"), 1.5):
        with pytest.raises(ValueError, match="finite and in"):
            pool.add("a", bad)
    with pytest.raises(ValueError, match="no clip"):
        pooling.pool("nobody", [])


def test_speaker_pattern_reads_a_group_or_the_named_group():
    parent = pooling.SpeakerPattern(r"([^/]+)/[^/]+$")
    assert parent.speaker("/data/alice/clip1.wav") == "alice" and parent.speaker("clip.wav") is None
    named = pooling.SpeakerPattern(r"(?P<prefix>\w)_(?P<speaker>\w+)-\d+\.wav$")
    assert named.speaker("x/f_bob-3.wav") == "bob"
    with pytest.raises(ValueError, match="needs a group"):
        pooling.SpeakerPattern(r"\w+")
    with pytest.raises(ValueError, match="not a regular expression"):
        pooling.SpeakerPattern(r"(unclosed")
