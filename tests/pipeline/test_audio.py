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


def test_an_mp3_with_cover_art_is_judged_by_its_decoded_length():
    from tests.helpers import with_id3_picture, without_xing_frame

    mp3 = without_xing_frame(encoded(sine(1.8, 16000), 16000, "MP3", "MPEG_LAYER_III"))
    tagged = with_id3_picture(mp3)
    with soundfile.SoundFile(io.BytesIO(tagged)) as f:
        assert f.frames / f.samplerate > 20  # libsndfile's estimate counts the 0.5 MB picture as audio
    wave = audio.decode_audio(tagged, 16000, "cover.mp3", max_seconds=10)
    assert 1.7 < len(wave) / 16000 < 2.0
    # A really long MP3 is still refused, from the frames decoded (at most the limit plus a chunk).
    long_mp3 = encoded(sine(12.0, 16000), 16000, "MP3", "MPEG_LAYER_III")
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(long_mp3, 16000, "long.mp3", max_seconds=10)
    assert e.value.reason == audio.TOO_LONG and "decodes to more than 10 s" in e.value.detail


def test_non_finite_samples_are_located_where_they_are(tmp_path):
    wave = sine(6.0, 16000)
    wave[int(4.8 * 16000)] = np.inf
    data = encoded(wave, 16000, "WAV", "FLOAT")
    (tmp_path / "inf.wav").write_bytes(data)
    with pytest.raises(audio.AudioError) as e:
        list(audio.stream_audio(str(tmp_path / "inf.wav"), 16000, "inf.wav"))
    assert e.value.reason == audio.NON_FINITE and "the first at 4.80 s" in e.value.detail
    with pytest.raises(audio.AudioError) as e:
        audio.decode_audio(data, 16000, "inf.wav")
    assert "the first at 4.80 s" in e.value.detail


@pytest.mark.parametrize("streamed", [True, False])
def test_a_text_file_named_mp3_is_called_a_text_file(tmp_path, streamed):
    path = tmp_path / "notes.mp3"
    path.write_text("these are my meeting notes\n" * 30)
    with pytest.raises(audio.AudioError) as e:
        if streamed:
            list(audio.stream_audio(str(path), 16000, str(path)))
        else:
            audio.decode_audio(path.read_bytes(), 16000, str(path))
    assert e.value.reason == audio.UNDECODABLE
    assert e.value.detail == f"{path}: not audio but a text file (it begins 'these are my meeting notes these are my ')"
    assert "pipe" not in e.value.detail
    path.write_bytes(b"\x00\x01\x02\x03" + bytes(range(200)) * 3)
    with pytest.raises(audio.AudioError) as e:
        list(audio.stream_audio(str(path), 16000, str(path)))
    assert "not in an audio format libsndfile reads" in e.value.detail and "00 01 02 03" in e.value.detail


def test_a_short_binary_file_is_not_called_text():
    assert audio.describe_unrecognised(b"\xff\xfb\x90").startswith("not in an audio format libsndfile reads")
    assert audio.describe_unrecognised(b"").startswith("not audio: the file is empty")
    long_text = ("x" * (audio.SNIFF_BYTES - 1)).encode() + "\u00e9".encode()  # a character cut by the window
    assert audio.describe_unrecognised(long_text[: audio.SNIFF_BYTES]).startswith("not audio but a text file")


class _CountingReader(io.BytesIO):
    """A file whose reads are recorded: what ``read_capped`` asked for."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, n=-1):
        self.asked.append(n)
        return super().read(n)


def test_read_capped_reserves_what_the_file_holds_not_the_cap():
    f = _CountingReader(b"x" * 5000)
    assert audio.read_capped(f, 5000) == b"x" * 5000
    assert f.asked == [5001]  # not MAX_FILE_BYTES + 1


def test_read_capped_reads_a_file_that_grew_since_it_was_sized(monkeypatch):
    monkeypatch.setattr(audio, "READ_PIECE_BYTES", 1000)
    data = bytes(range(256)) * 20  # 5,120 bytes where 100 were expected
    f = _CountingReader(data)
    assert audio.read_capped(f, 100) == data
    assert f.asked[0] == 101 and max(f.asked[1:]) == 1000


def test_read_capped_stops_one_byte_past_the_cap(monkeypatch):
    monkeypatch.setattr(audio, "MAX_FILE_BYTES", 3000)
    monkeypatch.setattr(audio, "READ_PIECE_BYTES", 700)
    f = _CountingReader(b"y" * 10_000)
    assert len(audio.read_capped(f, 10)) == 3001  # a file far longer than it was sized: pieces to the cap
    assert f.asked[:2] == [11, 700] and sum(f.asked) == 3001
    assert audio.read_capped(io.BytesIO(b""), 0) == b""


def test_a_file_over_the_cap_is_refused_with_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "MAX_FILE_BYTES", 2**20)
    path = tmp_path / "huge.wav"
    path.write_bytes(b"\0" * (2**20 + 10))
    with pytest.raises(audio.AudioError) as e:
        audio.read_local_bytes(str(path))
    assert e.value.reason == audio.TOO_LONG and "huge.wav: 1 MiB, over the 1 MiB" in e.value.detail
    path.write_bytes(b"\0" * 100)
    assert audio.read_local_bytes(str(path)) == b"\0" * 100
