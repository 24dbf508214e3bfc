import io

import numpy as np
import pytest
import soundfile

from pipeline import audio


def encoded(data: np.ndarray, rate: int, fmt: str, subtype=None) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def sine(seconds: float, rate: int, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize(
    "fmt,subtype", [("WAV", "PCM_16"), ("FLAC", None), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")]
)
def test_decodes_every_format_and_resamples(fmt, subtype):
    data = encoded(sine(1.0, 48000), 48000, fmt, subtype)
    wave = audio.decode_audio(data, 16000, f"x.{fmt.lower()}")
    assert wave.dtype == np.float32 and wave.ndim == 1
    # MP3 and Vorbis pad with encoder delay; the duration stays about 1 s.
    assert abs(len(wave) - 16000) < 1600
    assert 0.2 < np.abs(wave).max() < 0.6


def test_stereo_is_downmixed_by_averaging():
    left = sine(0.5, 16000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    wave = audio.decode_audio(encoded(stereo, 16000, "WAV", "FLOAT"), 16000)
    np.testing.assert_allclose(wave, left / 2, atol=1e-6)


def test_empty_bytes_are_rejected():
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(b"", 16000, "clips/a.mp3")
    assert e.value.reason == audio.EMPTY_FILE and "clips/a.mp3" in str(e.value)


def test_garbage_is_undecodable_and_names_the_file():
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(b"not audio at all" * 20, 16000, "clips/b.mp3")
    assert e.value.reason == audio.UNDECODABLE and "clips/b.mp3" in e.value.detail


def test_truncated_wav_still_decodes_what_is_there():
    data = encoded(sine(1.0, 16000), 16000, "WAV", "PCM_16")
    wave = audio.decode_audio(data[: len(data) // 2], 16000, "half.wav")
    assert 0 < len(wave) < 16000


def test_missing_file(tmp_path):
    with pytest.raises(audio.AudioError) as e:
        audio.read_audio_file(str(tmp_path / "nope.mp3"), 16000)
    assert e.value.reason == audio.MISSING_FILE


def test_non_finite_samples_are_rejected():
    wave = sine(0.5, 16000)
    wave[10:20] = np.nan
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(encoded(wave, 16000, "WAV", "FLOAT"), 16000, "nan.wav")
    assert e.value.reason == audio.NON_FINITE and "10 of 8000 samples" in e.value.detail


def test_length_is_judged_from_the_header_before_decoding():
    data = encoded(sine(3.0, 16000), 16000, "WAV", "PCM_16")
    assert len(audio.decode_audio(data, 16000, "ok.wav", max_seconds=5)) == 48000
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(data, 16000, "long.wav", max_seconds=2)
    assert e.value.reason == audio.TOO_LONG and "long.wav: 3.0 s" in e.value.detail
    # 32 KB of samples whose header claims 1 Hz would be 16,000 s once resampled: refused unread.
    lying = encoded(np.zeros(16000, np.float32), 1, "WAV", "PCM_16")
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(lying, 16000, "one_hertz.wav", max_seconds=120)
    assert e.value.reason == audio.UNDECODABLE and "one_hertz.wav: header claims 1 Hz" in e.value.detail
    # At a possible rate, the length from the header decides: 16,000 samples at 1 kHz are 16 s.
    slow = encoded(np.zeros(16000, np.float32), audio.MIN_SOURCE_RATE, "WAV", "PCM_16")
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(slow, 16000, "slow.wav", max_seconds=10)
    assert e.value.reason == audio.TOO_LONG and "slow.wav: 16.0 s" in e.value.detail


def test_only_regular_files_are_opened(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.wav")  # opening it would block forever
    (tmp_path / "dir.wav").mkdir()
    for name in ("fifo.wav", "dir.wav"):
        with pytest.raises(audio.AudioError) as e:
            audio.read_audio_file(str(tmp_path / name), 16000)
        assert e.value.reason == audio.NOT_A_FILE and name in e.value.detail
