"""benchmarks.noise_level: the feature-domain SNR of waveform noise, and a run on generated clips."""

import numpy as np
import pytest

from benchmarks import noise_level
from pipeline import features
from tests.benchmarks.smoke import assert_finite, run_benchmark
from tests.helpers import generated_voice


@pytest.mark.parametrize("feature_set", [features.LOG_MEL, features.INA_MEL], ids=lambda fs: fs.name)
def test_twice_the_noise_amplitude_is_6_db_less_feature_snr(feature_set):
    # Both feature sets' magnitudes are linear in amplitude (ina_mel's the root of its band power), so doubling
    # the noise lowers the feature-domain SNR by 20 log10(2) exactly, whatever the speech.
    voice = generated_voice(True, 2.0, 3)
    noise = noise_level.white_noise(voice, 10.0, np.random.default_rng(0))
    snr, share = noise_level.feature_snr(voice, noise, feature_set)
    snr2, share2 = noise_level.feature_snr(voice, 2 * noise, feature_set)
    assert len(snr) == 2  # the voice's two whole blocks, both voiced
    np.testing.assert_allclose(snr - snr2, 20 * np.log10(2.0), atol=1e-3)
    assert np.all(share > 0.0) and np.all(share < share2) and np.all(share2 <= 1.0)


def test_only_the_blocks_the_silence_rule_keeps_are_measured():
    voice = generated_voice(True, 2.0, 3)
    silence = np.zeros(2 * features.INA_MEL.block_samples, np.float32)  # two silent blocks first
    padded = np.concatenate([silence, voice])
    noise = noise_level.white_noise(voice, 10.0, np.random.default_rng(0))
    padded_noise = np.concatenate([silence, noise])
    assert len(noise_level.feature_snr(padded, padded_noise, features.INA_MEL)[0]) == \
        len(noise_level.feature_snr(voice, noise, features.INA_MEL)[0])


def test_white_noise_is_at_the_asked_waveform_snr():
    voice = generated_voice(False, 2.0, 4)
    noise = noise_level.white_noise(voice, 10.0, np.random.default_rng(1))
    assert 10 * np.log10(np.mean(voice.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2)) \
        == pytest.approx(10.0, abs=0.1)


def test_the_benchmark_runs_on_generated_clips(tmp_path):
    result = run_benchmark("noise_level", "--clips=4", f"--data={tmp_path / 'absent'}", "--snr_db=0,20",
                           "--feature_sets=ina_mel", "--train_range=-100,100")
    rows = result["by_feature_set"]["ina_mel"]
    assert result["clips"] == 4 and "generated" in result["source"]
    assert_finite(rows["0"], ["blocks", "median_db", "p10_db", "p90_db", "noise_cells", "train_draws_as_noisy"])
    assert rows["20"]["median_db"] == pytest.approx(rows["0"]["median_db"] + 20.0, abs=1.0)  # only the noise scales
    for row in rows.values():  # uniform draws in [-100, 100] at or below the median
        assert row["train_draws_as_noisy"] == pytest.approx((row["median_db"] + 100) / 200, abs=1e-3)
