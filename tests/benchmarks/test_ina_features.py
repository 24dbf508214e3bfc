"""benchmarks.ina_features: its comparison on a stand-in for the wheel, the numpy shims, and the skip without a wheel."""

import types

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import ina_features
from benchmarks.peers import ina_features_peer
from pipeline import features, spectrogram
from tests.benchmarks.smoke import run_benchmark


def _stand_in(offset: float, silent_band: bool):
    """A module with ina's ``mfcc`` signature returning our log mel, moved by ``offset``, maybe with a -inf band."""

    def mfcc(wave, get_mspec=False):
        mspec = spectrogram.compute_features(tf.constant(wave), features.INA_MEL).numpy() + offset
        if silent_band:
            mspec[0, 0] = -np.inf
        return [None, None, None, mspec]

    return types.SimpleNamespace(mfcc=mfcc)


def test_compare_reports_the_largest_difference_and_leaves_out_silence():
    waves = [ina_features.fixture_voice(), 0.5 * ina_features.fixture_voice()]
    same = ina_features.compare(_stand_in(0.0, silent_band=True), waves)
    assert same["max_abs_diff"] == 0.0 and same["clips_over_goal"] == 0 and same["ina_non_finite_values"] == 2
    moved = ina_features.compare(_stand_in(0.01, silent_band=False), waves)
    assert moved["max_abs_diff"] == pytest.approx(0.01, abs=1e-5) and moved["clips_over_goal"] == 2


def test_numpy_spellings_are_there_for_the_call_only():
    assert not hasattr(np.lib, "pad") and "int" not in np.__dict__
    with ina_features_peer._numpy_spellings_of_2021():
        assert np.lib.pad is np.pad and np.int is int
    assert not hasattr(np.lib, "pad") and "int" not in np.__dict__


@pytest.mark.slow
def test_without_the_wheel_it_says_so(tmp_path):
    report = run_benchmark("ina_features", f"--wheel={tmp_path / 'absent.whl'}", "--clips=2")
    assert "skipped" in report
