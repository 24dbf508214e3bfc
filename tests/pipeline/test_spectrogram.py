import numpy as np
import pytest
import tensorflow as tf

from pipeline import features, spectrogram

RATE = features.LOG_MEL.sample_rate


def tone(seconds: float, rate: int = RATE, hz: float = 150.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("fs", [features.LOG_MEL, features.STFT_SEED, features.INA_MEL, features.LOG_MEL_INA],
                         ids=lambda f: f.name)
def test_block_shapes_eager_and_in_dataset_map(fs):
    wave = tone(3.0, fs.sample_rate)
    blocks, voiced = spectrogram.waveform_to_blocks(wave, fs)
    expected = int(spectrogram.num_blocks(len(wave), fs))
    assert blocks.shape == (expected, *fs.block_shape)
    assert expected == ((len(wave) - fs.frame_length) // fs.frame_step + 1) // fs.block_frames
    assert voiced.numpy().all()

    ds = tf.data.Dataset.from_tensors(wave).map(lambda w: spectrogram.waveform_to_blocks(w, fs))
    mapped_blocks, mapped_voiced = next(iter(ds))
    np.testing.assert_allclose(mapped_blocks.numpy(), blocks.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(mapped_voiced.numpy(), voiced.numpy())


def test_log_mel_ina_is_log_mel_then_ina_mel_on_the_same_frames():
    fs = features.LOG_MEL_INA
    log_mel, ina_mel = fs.parts
    assert (log_mel.name, ina_mel.name) == ("log_mel", "ina_mel") and ina_mel.fft_float64 is False
    assert log_mel.num_bins + ina_mel.num_bins == fs.num_bins and fs.normalized_bins == log_mel.num_bins
    for part in fs.parts:  # one frame grid: the parts' frames are the same 25 ms of audio
        assert (part.sample_rate, part.frame_length, part.frame_step) == (fs.sample_rate, 400, 160)
    wave = tone(2.3) + tone(2.3, hz=1700.0, level=0.05)
    fused = spectrogram.compute_features(wave, fs).numpy()
    np.testing.assert_array_equal(fused[:, :64], spectrogram.compute_features(wave, log_mel).numpy())
    np.testing.assert_array_equal(fused[:, 64:], spectrogram.compute_features(wave, ina_mel).numpy())
    blocks, _ = spectrogram.waveform_to_blocks(wave, fs)
    np.testing.assert_array_equal(blocks.numpy().reshape(-1, fs.num_bins), fused[: len(blocks) * 96])


def test_stft_seed_is_the_seeds_abs_real_part_with_100_by_513_blocks():
    fs = features.STFT_SEED
    wave = tone(2.0, fs.sample_rate)
    blocks, _ = spectrogram.waveform_to_blocks(wave, fs)
    assert blocks.shape[1:] == (100, 513)
    seed = tf.abs(tf.math.real(tf.signal.stft(wave, frame_length=1024, frame_step=384)))
    np.testing.assert_array_equal(blocks[0].numpy(), seed[:100].numpy())
    # Not the magnitude: the quirk is kept on purpose.
    magnitude = tf.abs(tf.signal.stft(wave, frame_length=1024, frame_step=384))
    assert not np.allclose(blocks[0].numpy(), magnitude[:100].numpy())


def test_log_mel_is_log_of_mel_weighted_magnitude():
    fs = features.LOG_MEL
    wave = tone(1.5)
    frames = spectrogram.compute_features(wave, fs).numpy()
    stft = np.abs(tf.signal.stft(wave, 400, 160, 512).numpy())
    mel = tf.signal.linear_to_mel_weight_matrix(64, 257, RATE, 125.0, 7500.0).numpy()
    np.testing.assert_allclose(frames, np.log(stft @ mel + 0.001), rtol=1e-4, atol=1e-4)
    # A 150 Hz tone puts its energy in the lowest mel bins.
    assert frames.mean(axis=0).argmax() < 8


def test_too_short_clip_gives_no_blocks():
    fs = features.LOG_MEL
    blocks, voiced = spectrogram.waveform_to_blocks(tone(0.5), fs)
    assert blocks.shape == (0, 96, 64) and voiced.shape == (0,)
    assert int(spectrogram.num_blocks(fs.min_clip_samples, fs)) == 1
    assert int(spectrogram.num_blocks(fs.min_clip_samples - 1, fs)) == 0


def test_silence_rule_drops_quiet_and_relatively_quiet_blocks():
    fs = features.LOG_MEL
    n = fs.block_samples
    loud = tone(n / RATE)
    pause = tone(n / RATE, level=0.3 * 10 ** (-40 / 20))  # 40 dB below the loudest block
    digital_silence = np.zeros(n, np.float32)
    wave = np.concatenate([loud, pause, loud, digital_silence, loud, np.zeros(fs.frame_length, np.float32)])
    _, voiced = spectrogram.waveform_to_blocks(wave, fs)
    assert voiced.numpy().tolist() == [True, False, True, False, True]


def test_entirely_quiet_clip_is_all_silent():
    fs = features.LOG_MEL
    dither = (3e-5 * np.random.default_rng(0).standard_normal(3 * RATE)).astype(np.float32)  # about -90 dBFS
    _, voiced = spectrogram.waveform_to_blocks(dither, fs)
    assert len(voiced) > 0 and not voiced.numpy().any()
    _, voiced = spectrogram.waveform_to_blocks(np.zeros(3 * RATE, np.float32), fs)
    assert len(voiced) > 0 and not voiced.numpy().any()


@pytest.mark.parametrize("peak_dbfs", [-40.0, -60.0])
def test_quiet_recordings_are_speech(peak_dbfs):
    # Issue 9: real speech recorded quietly (peak -40 dBFS, loudest 100 ms at -49) was refused as silent.
    fs = features.LOG_MEL
    wave = tone(3.0, level=10 ** (peak_dbfs / 20))
    _, voiced = spectrogram.waveform_to_blocks(wave, fs)
    assert len(voiced) > 0 and voiced.numpy().all()
    rms_db = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2))
    assert rms_db > features.SILENCE_FLOOR_DBFS and rms_db < -40  # quiet, above the floor


def test_traced_block_fn_matches_eager_for_any_length():
    fs = features.LOG_MEL
    fn = spectrogram.make_block_fn(fs)
    for seconds in (1.2, 2.7):
        wave = tone(seconds)
        traced, _ = fn(wave)
        eager, _ = spectrogram.waveform_to_blocks(wave, fs)
        np.testing.assert_allclose(traced.numpy(), eager.numpy(), rtol=1e-5, atol=1e-5)
