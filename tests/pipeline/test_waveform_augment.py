"""pipeline.waveform_augment on a synthetic vowel whose F0 and formants are known."""

import dataclasses
import pickle

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import soxr

from pipeline import waveform_augment as wa

RATE = wa.SAMPLE_RATE
F0 = 120.0
FORMANTS = ((700.0, 80.0), (1200.0, 90.0), (2600.0, 120.0))  # (frequency, bandwidth) Hz


def vowel(f0: float = F0, seconds: float = 1.5, peak: float = 0.5) -> np.ndarray:
    """A steady /a/-like vowel: a glottal pulse train at f0 through three resonators (F1, F2, F3)."""
    n = int(seconds * RATE)
    source = np.zeros(n)
    source[(np.arange(0, seconds, 1.0 / f0) * RATE).astype(int)] = 1.0
    source = scipy.signal.lfilter([1.0], [1.0, -0.95], source)  # glottal roll-off
    out = source
    for freq, bandwidth in FORMANTS:
        r = np.exp(-np.pi * bandwidth / RATE)
        a = [1.0, -2 * r * np.cos(2 * np.pi * freq / RATE), r * r]
        out = scipy.signal.lfilter([sum(a)], a, out)  # unity gain at 0 Hz
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.05 * RATE))
    out = out * fade
    return (peak * out / np.abs(out).max()).astype(np.float32)


def middle(x: np.ndarray) -> np.ndarray:
    """The steady middle (away from the fades and PSOLA's edges)."""
    return np.asarray(x, dtype=np.float64)[int(0.25 * RATE): len(x) - int(0.25 * RATE)]


def f0_of(x: np.ndarray) -> float:
    """F0 by the autocorrelation peak of the middle part (biased estimate: the first period wins)."""
    seg = middle(x) - middle(x).mean()
    r = scipy.signal.correlate(seg, seg, "full", method="fft")[len(seg) - 1:]
    lo, hi = int(RATE / 400), int(RATE / 70)
    lag = lo + int(np.argmax(r[lo:hi]))
    a, b, c = r[lag - 1: lag + 2]
    return RATE / (lag + 0.5 * (a - c) / (a - 2 * b + c))


def formants_of(x: np.ndarray, order: int = 10) -> tuple[float, float]:
    """F1, F2 by LPC root picking (30 ms frames, pre-emphasis), medians over the middle part."""
    seg = middle(x)
    seg = np.append(seg[0], seg[1:] - 0.97 * seg[:-1])
    size, hop = int(0.03 * RATE), int(0.01 * RATE)
    found = []
    for start in range(0, len(seg) - size, hop):
        frame = seg[start: start + size] * np.hamming(size)
        r = np.correlate(frame, frame, "full")[size - 1: size + order]
        a = scipy.linalg.solve_toeplitz(r[:order], -r[1: order + 1])
        roots = [z for z in np.roots(np.concatenate([[1.0], a])) if z.imag > 0]
        freqs = sorted(np.angle(z) * RATE / (2 * np.pi) for z in roots
                       if -np.log(abs(z)) * RATE / np.pi < 500 and np.angle(z) * RATE / (2 * np.pi) > 250)
        if len(freqs) >= 2:
            found.append(freqs[:2])
    f1, f2 = np.median(np.array(found), axis=0)
    return float(f1), float(f2)


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
    return float(10 * np.log10(spectrum[(freqs >= lo) & (freqs < hi)].sum()))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def assert_clean(y: np.ndarray) -> None:
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert np.abs(y).max() <= 1.0


# ----------------------------------------------------------------------------- the meters themselves


def test_the_synthetic_vowel_measures_as_built():
    x = vowel()
    assert f0_of(x) == pytest.approx(F0, rel=0.02)
    f1, f2 = formants_of(x)
    assert f1 == pytest.approx(700, rel=0.1)
    assert f2 == pytest.approx(1200, rel=0.1)


def test_the_formant_meter_sees_a_formant_shift():
    """Resampling (playing 1.4x faster) moves F0 and formants together: the meter must report it."""
    x = vowel()
    shifted = soxr.resample(x, int(RATE * 1.4), RATE)  # every frequency x1.4
    f1, f2 = formants_of(x)
    g1, g2 = formants_of(shifted)
    assert g1 / f1 == pytest.approx(1.4, rel=0.1)
    assert g2 / f2 == pytest.approx(1.4, rel=0.1)
    assert f0_of(shifted) == pytest.approx(1.4 * F0, rel=0.05)


# ----------------------------------------------------------------------------- raise_pitch


@pytest.mark.parametrize("factor", [1.2, 1.4, 1.6])
def test_raise_pitch_raises_f0_and_keeps_formants_and_length(factor):
    x = vowel()
    y = wa.raise_pitch(x, RATE, factor)
    assert_clean(y)
    assert len(y) == len(x)
    assert f0_of(y) == pytest.approx(factor * F0, rel=0.05)
    (f1, f2), (g1, g2) = formants_of(x), formants_of(y)
    assert g1 / f1 == pytest.approx(1.0, abs=0.12)
    assert g2 / f2 == pytest.approx(1.0, abs=0.12)


@pytest.mark.parametrize("factor", [0.65, 0.8])
def test_a_factor_below_one_lowers_a_female_f0_and_keeps_formants(factor):
    x = vowel(f0=210.0)
    y = wa.raise_pitch(x, RATE, factor)
    assert_clean(y)
    assert len(y) == len(x)
    assert f0_of(y) == pytest.approx(factor * 210.0, rel=0.05)
    (f1, f2), (g1, g2) = formants_of(x), formants_of(y)
    assert g1 / f1 == pytest.approx(1.0, abs=0.12)
    assert g2 / f2 == pytest.approx(1.0, abs=0.12)


def test_outputs_of_full_scale_input_stay_under_the_peak_limit():
    noise = np.random.default_rng(0).normal(scale=0.3, size=RATE)
    noise = (noise / np.abs(noise).max()).astype(np.float32)  # peak exactly 1: PSOLA's overlap-add overshoots it
    for x in (vowel(peak=1.0), noise):
        for y in (wa.raise_pitch(x, RATE, 1.5), wa.apply(x, RATE, wa.AugmentSpec())):
            assert_clean(y)
            assert len(y) == len(x)
            assert np.abs(y).max() <= wa.PEAK_LIMIT


def test_estimate_median_f0_of_the_vowel_and_of_its_raised_version():
    x = vowel()
    assert wa.estimate_median_f0(x, RATE) == pytest.approx(F0, rel=0.03)
    assert wa.estimate_median_f0(wa.raise_pitch(x, RATE, 1.4), RATE) == pytest.approx(1.4 * F0, rel=0.03)
    assert wa.estimate_median_f0(np.zeros(RATE, np.float32), RATE) is None


# ----------------------------------------------------------------------------- vocal_effort


def test_identity_effort_returns_the_input():
    x = vowel()
    np.testing.assert_array_equal(wa.vocal_effort(x, RATE, 0.0, 0.0, 1.0), x)


@pytest.mark.parametrize("tempo", [1.1, 1.15])
def test_tempo_shortens_by_the_tempo_and_keeps_the_pitch(tempo):
    x = vowel(seconds=2.0)
    y = wa.vocal_effort(x, RATE, 0.0, 0.0, tempo)
    assert_clean(y)
    assert len(x) / len(y) == pytest.approx(tempo, rel=0.03)
    assert f0_of(y) == pytest.approx(F0, rel=0.05)
    (f1, _), (g1, _) = formants_of(x), formants_of(y)
    assert g1 / f1 == pytest.approx(1.0, abs=0.12)


@pytest.mark.parametrize("tilt", [3.0, 6.0])
def test_tilt_raises_the_highs_against_the_lows_by_the_specified_curve(tilt):
    x = vowel()
    y = wa.vocal_effort(x, RATE, tilt, 0.0, 1.0)
    assert_clean(y)
    # What the specification promises for this input: the power spectrum weighted by the boost curve.
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
    boost = 10 ** (0.5 * tilt * np.log2(1 + (freqs / 500.0) ** 2) / 10)

    def expected_band_gain(lo, hi):
        band = (freqs >= lo) & (freqs < hi)
        return 10 * np.log10((spectrum[band] * boost[band]).sum() / spectrum[band].sum())

    expected = expected_band_gain(3000, 6000) - expected_band_gain(0, 1000)
    measured = (band_db(y, 3000, 6000) - band_db(y, 0, 1000)) - (band_db(x, 3000, 6000) - band_db(x, 0, 1000))
    assert measured == pytest.approx(expected, abs=1.0)
    assert measured > 1.5 * tilt  # more than an octave's worth: the boost grows with frequency


def test_gain_raises_the_level_with_the_peak_limited_not_clipped():
    """A loud second, then a soft one: +6 dB makes the loud one hit the limit; the soft one must still get +6 dB."""
    loud, soft = vowel(seconds=1.0, peak=0.9), vowel(seconds=1.0, peak=0.3)
    x = np.concatenate([loud, soft])
    y = wa.vocal_effort(x, RATE, 0.0, 6.0, 1.0)
    assert_clean(y)
    assert np.abs(y).max() <= wa.PEAK_LIMIT
    away = int(0.02 * RATE)  # the limiter looks 5 ms ahead and back
    soft_part = slice(RATE + away, None)
    assert rms(y[soft_part]) / rms(x[soft_part]) == pytest.approx(10 ** (6 / 20), rel=0.01)  # scaling would give 1.1
    assert rms(y[:RATE]) / rms(x[:RATE]) == pytest.approx(wa.PEAK_LIMIT / 0.9, rel=0.05)
    assert rms(y) > 1.15 * rms(x)  # scaling the whole clip back under the limit would give 1.1
    assert np.mean(np.abs(y) >= 0.999 * wa.PEAK_LIMIT) < 0.002  # no flat, clipped tops


def test_gain_without_limiting_is_exact():
    x = vowel(peak=0.2)
    y = wa.vocal_effort(x, RATE, 0.0, 6.0, 1.0)
    np.testing.assert_allclose(y, x * 10 ** (6 / 20), rtol=1e-5, atol=1e-7)


def test_apply_does_everything_at_once():
    x = vowel(seconds=2.0)
    spec = wa.AugmentSpec(f0_factor=1.4, tilt_db_per_octave=3.0, gain_db=6.0, tempo=1.1)
    y = wa.apply(x, RATE, spec)
    assert_clean(y)
    assert len(x) / len(y) == pytest.approx(1.1, rel=0.03)
    assert f0_of(y) == pytest.approx(1.4 * F0, rel=0.05)
    assert rms(y) > 1.5 * rms(x)


# ----------------------------------------------------------------------------- AugmentSpec, draw_spec


def test_spec_tag_and_pickling():
    spec = wa.AugmentSpec(f0_factor=1.3, tilt_db_per_octave=3.0, gain_db=6.0, tempo=1.1)
    assert spec.tag == "f0x1.30_tilt3_gain6_tempo1.10"
    assert spec.name == spec.tag
    assert wa.AugmentSpec().tag == "f0x1.00_tilt0_gain0_tempo1.00"
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.gain_db = 0.0  # type: ignore[misc]


def test_draw_spec_is_deterministic_per_seed_and_differs_across_seeds():
    a = [wa.draw_spec(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    assert wa.draw_spec(np.random.default_rng(8)) != a[0]
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    wa.draw_spec(rng1)
    wa.draw_spec(rng2, median_f0_hz=300.0)
    assert rng1.random() == rng2.random()  # the same number of draws either way


def test_draw_spec_stays_in_the_issue_ranges():
    rng = np.random.default_rng(0)
    specs = [wa.draw_spec(rng) for _ in range(300)]
    f0 = np.array([s.f0_factor for s in specs])
    assert f0.min() >= 1.1 and f0.max() <= 1.6 and f0.max() - f0.min() > 0.4
    for field, (lo, hi) in [("tilt_db_per_octave", (0, 6)), ("gain_db", (0, 6)), ("tempo", (1.0, 1.15))]:
        values = np.array([getattr(s, field) for s in specs])
        assert values.min() >= lo and values.max() <= hi and values.max() - values.min() > 0.8 * (hi - lo)


@pytest.mark.parametrize("median, cap", [(120.0, 1.6), (200.0, 1.5), (250.0, 1.4), (400.0, 1.25)])
def test_draw_spec_caps_the_f0_rise_at_100_hz(median, cap):
    rng = np.random.default_rng(1)
    f0 = np.array([wa.draw_spec(rng, median_f0_hz=median).f0_factor for _ in range(200)])
    assert f0.max() <= cap + 1e-9
    assert f0.max() > cap - 0.05  # the cap is an upper end, not where everything lands
    assert f0.min() >= min(1.1, cap) - 1e-9


def test_draw_lowered_spec_stays_in_its_ranges_and_never_raises():
    rng = np.random.default_rng(0)
    specs = [wa.draw_lowered_spec(rng) for _ in range(300)]
    f0 = np.array([s.f0_factor for s in specs])
    assert f0.min() >= 0.65 and f0.max() <= 0.9 and f0.max() - f0.min() > 0.2
    for field, (lo, hi) in [("tilt_db_per_octave", (-6, 0)), ("gain_db", (-6, 0)), ("tempo", (0.87, 1.0))]:
        values = np.array([getattr(s, field) for s in specs])
        assert values.min() >= lo and values.max() <= hi and values.max() - values.min() > 0.8 * (hi - lo)
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    wa.draw_lowered_spec(rng1)
    wa.draw_lowered_spec(rng2, median_f0_hz=150.0)
    assert rng1.random() == rng2.random()  # the same number of draws either way


@pytest.mark.parametrize("median, floor", [(240.0, 0.65), (200.0, 0.65), (150.0, 0.8), (125.0, 0.96), (100.0, 1.0)])
def test_draw_lowered_spec_keeps_the_median_above_120_hz(median, floor):
    rng = np.random.default_rng(1)
    f0 = np.array([wa.draw_lowered_spec(rng, median_f0_hz=median).f0_factor for _ in range(200)])
    assert f0.min() >= floor - 1e-9
    assert f0.max() <= 1.0
    assert np.all(f0 * median >= min(120.0, median) - 1e-6)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad, message", [
    (np.array([0.1, np.nan] * RATE, np.float32), "non-finite"),
    (np.array([0.1, np.inf] * RATE, np.float32), "non-finite"),
    (np.zeros(int(0.1 * RATE), np.float32), "too short"),
    (np.zeros((RATE, 2), np.float32), "mono"),
    (np.zeros(RATE, np.int16), "floats"),
])
def test_bad_waveforms_raise_value_error(bad, message):
    for call in (lambda: wa.raise_pitch(bad, RATE, 1.3), lambda: wa.vocal_effort(bad, RATE, 3.0, 3.0, 1.1),
                 lambda: wa.apply(bad, RATE, wa.AugmentSpec()), lambda: wa.estimate_median_f0(bad, RATE)):
        with pytest.raises(ValueError, match=message):
            call()


def test_wrong_rate_raises_value_error():
    with pytest.raises(ValueError, match="rate must be 16000"):
        wa.raise_pitch(vowel(), 44100, 1.3)
    with pytest.raises(ValueError, match="rate must be 16000"):
        wa.vocal_effort(vowel(), 8000, 3.0, 3.0, 1.1)


@pytest.mark.parametrize("kwargs", [dict(f0_factor=0.0), dict(f0_factor=float("nan")), dict(tempo=0.0),
                                    dict(tempo=3.0), dict(gain_db=float("inf")), dict(tilt_db_per_octave=50.0)])
def test_out_of_range_parameters_raise_value_error(kwargs):
    with pytest.raises(ValueError, match="must be a finite number"):
        wa.AugmentSpec(**kwargs)


def test_out_of_range_factor_raises_value_error():
    with pytest.raises(ValueError, match="factor"):
        wa.raise_pitch(vowel(), RATE, -1.0)
    with pytest.raises(ValueError, match="tempo"):
        wa.vocal_effort(vowel(), RATE, 0.0, 0.0, 0.0)
