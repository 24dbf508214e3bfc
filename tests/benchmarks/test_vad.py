"""benchmarks.vad and benchmarks.recordings: generated conversations with known truth, and a tiny run."""

import numpy as np
import pytest

from benchmarks import recordings
from model.predict import vad
from tests.benchmarks.smoke import assert_finite, run_benchmark

RATE = recordings.SAMPLE_RATE


@pytest.fixture(scope="module")
def sources():
    male, female = recordings.synthetic_sources(np.random.default_rng(0), speakers_per_gender=3, clips_per_speaker=2)
    return male, female


def test_a_recording_alternates_genders_and_its_truth_covers_it(sources):
    male, female = sources
    rec = recordings.make_recording(np.random.default_rng(1), male, female, seconds=40.0,
                                    interludes=("music", "noise"), interlude_prob=1.0)
    assert rec.waveform.dtype == np.float32 and len(rec.waveform) == 40 * RATE
    assert rec.truth[0].start_s == 0.0 and rec.truth[-1].end_s == pytest.approx(40.0)
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(rec.truth, rec.truth[1:], strict=False))
    kinds = [s.kind for s in rec.truth]
    assert set(kinds) <= set(recordings.KINDS) and {"music", "noise"} <= set(kinds)
    turns = [k for k in kinds if k in recordings.SPEECH_KINDS]
    assert len(turns) >= 2 and all(a != b for a, b in zip(turns, turns[1:], strict=False))  # alternating
    for seg in rec.truth[:-1]:  # the last one may be cut at 40 s
        length = seg.end_s - seg.start_s
        if seg.kind == "pause":
            assert 0.2 <= length <= 1.5
        elif seg.kind in recordings.SPEECH_KINDS:
            assert length <= 15.0
    mask = recordings.truth_frames(rec)
    assert len(mask) == vad.frame_count(len(rec.waveform))
    speech_s = sum(s.end_s - s.start_s for s in rec.truth if s.kind in recordings.SPEECH_KINDS)
    assert mask.sum() * vad.FRAME_S == pytest.approx(speech_s, abs=0.05 * len(turns))
    pauses = [s for s in rec.truth if s.kind == "pause"]
    quiet = rec.waveform[round(pauses[0].start_s * RATE): round(pauses[0].end_s * RATE)]
    assert 20 * np.log10(np.sqrt(np.mean(quiet ** 2))) < -60  # room tone only


@pytest.mark.parametrize("kind", recordings.NOISES)
def test_noise_is_added_at_the_asked_snr(sources, kind):
    male, female = sources
    rec = recordings.make_recording(np.random.default_rng(2), male, female, seconds=20.0)
    babble = [clip for speaker in male + female for clip in speaker]
    noisy = recordings.add_noise(rec, kind, 10.0, np.random.default_rng(3), babble)
    assert noisy.truth == rec.truth and "10 dB" in noisy.description
    speech = np.repeat(recordings.truth_frames(rec), RATE // 100)[: len(rec.waveform)]
    added = noisy.waveform - rec.waveform
    snr = 10 * np.log10(np.mean(rec.waveform[speech] ** 2) / np.mean(added ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_noise_colours_fall_with_frequency():
    rng = np.random.default_rng(0)
    slopes = {}
    for kind in ("white", "pink", "brown"):
        power = np.abs(np.fft.rfft(recordings.make_noise(kind, RATE * 4, rng))) ** 2
        freqs = np.fft.rfftfreq(RATE * 4, 1 / RATE)
        low, high = power[(freqs > 100) & (freqs < 200)].mean(), power[(freqs > 1000) & (freqs < 2000)].mean()
        slopes[kind] = 10 * np.log10(low / high)  # dB per decade
    assert abs(slopes["white"]) < 1.5 and slopes["pink"] == pytest.approx(10, abs=1.5)
    assert slopes["brown"] == pytest.approx(20, abs=1.5)
    with pytest.raises(ValueError, match="babble noise needs"):
        recordings.make_noise("babble", 100, rng)


def test_music_is_finite_unit_rms_and_not_silent():
    music = recordings.make_music(3.0, np.random.default_rng(5))
    assert len(music) == 3 * RATE and np.all(np.isfinite(music))
    assert np.sqrt(np.mean(music ** 2)) == pytest.approx(1.0, rel=1e-3)


@pytest.mark.slow
def test_vad_benchmark_runs_on_synthetic_voices(tmp_path):
    result = run_benchmark("vad", "--recordings=1", "--seconds=12", "--speakers=2",
                           f"--data_dir={tmp_path / 'absent'}", "--detectors=energy,webrtc_a2,silero_0.5")
    assert "synthetic" in result["source"]
    assert result["audio_s"] == pytest.approx(12 * len(result["conditions"]))
    names = ["energy", "webrtc_a2", "silero_0.5"]
    assert_finite(result["rtf"], names)
    for name in names:
        for cond in result["conditions"]:
            row = result["frames"][name][cond]
            assert_finite(row, ["precision", "recall", "f1", "balanced_accuracy"])
            assert 0 <= row["f1"] <= 1
    assert result["frames"]["all_speech"]["clean"]["recall"] == 1.0


def test_room_response_decays_by_its_rt60_and_keeps_the_energy():
    response = recordings.room_response(0.5, np.random.default_rng(4))
    assert response.dtype == np.float32 and np.sum(response.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert response[0] == response.max() and response[0] ** 2 == pytest.approx(0.5, rel=0.01)  # 0 dB direct/reverb
    tail = response[1:].astype(np.float64) ** 2
    early, late = tail[: RATE // 10].sum(), tail[int(0.4 * RATE): int(0.5 * RATE)].sum()
    # Energy falls 60 dB in RT60: 0.3-0.4 s later the tail is ~36-48 dB down (a Gaussian tail's spread).
    assert 30 < 10 * np.log10(early / late) < 55


def test_a_far_field_recording_keeps_its_truth_and_is_quieter_and_longer_ringing(sources):
    male, female = sources
    dry = recordings.make_recording(np.random.default_rng(5), male, female, seconds=20.0)
    far = recordings.make_recording(np.random.default_rng(5), male, female, seconds=20.0, rt60_s=0.6,
                                    distance_db=-15.0)
    assert far.truth == dry.truth and "far-field" in far.description and len(far.waveform) == len(dry.waveform)
    level = 10 * np.log10(np.mean(far.waveform.astype(np.float64) ** 2) / np.mean(dry.waveform.astype(np.float64) ** 2))
    assert level == pytest.approx(-15.0, abs=1.5)
    # The pause after the first turn rings with the turn's reverberation.
    first_turn = next(i for i, s in enumerate(dry.truth) if s.kind in recordings.SPEECH_KINDS)
    pause = dry.truth[first_turn + 1]
    a = round(pause.start_s * RATE)
    head = slice(a, a + RATE // 20)
    assert np.mean(far.waveform[head] ** 2) > 10 * np.mean(dry.waveform[head] ** 2) * 10 ** (-15 / 10)
