"""Train-only waveform augmentation for raised-pitch, effortful speech (issue 9).

(And its mirror for women's voices: ``draw_lowered_spec`` lowers F0, tilt and
rate, as in sad or subdued speech.)

Emotional speech from men often sits at 200-380 Hz F0 instead of 90-200 Hz,
with more vocal effort: a flatter spectral tilt, more level, a faster rate.
These functions turn an ordinary clip into such a clip: ``raise_pitch`` scales
F0 while keeping the formants (the spectral envelope, which carries most of a
speaker's vocal-tract size), ``vocal_effort`` flattens the tilt, raises the
level and the speaking rate, and ``apply`` does both for an ``AugmentSpec``
drawn by ``draw_spec``.

F0 and duration are changed by Praat's PSOLA (pitch-synchronous overlap-add,
through parselmouth): pulses are marked on the voiced stretches, copied at the
new pitch period (and skipped or repeated for a new duration), each windowed
over two original periods, so the envelope within a period (the formants)
stays. Unvoiced stretches are copied. ``benchmarks/augmentation.py`` measured
it against the WORLD vocoder (pyworld) on Common Voice clips: both keep the
formants and hit the F0 ratio; PSOLA costs about a tenth of WORLD's CPU.

Pure NumPy/SciPy/parselmouth: no TensorFlow. Every function takes and returns
16 kHz mono float32 samples in [-1, 1], one clip at a time.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import parselmouth
import scipy.fft
import scipy.ndimage
from parselmouth.praat import call

from pipeline import features

SAMPLE_RATE = features.AUGMENT_SAMPLE_RATE
# Praat's pitch analysis at a 75 Hz floor needs 40 ms windows; a clip must hold a few of them.
MIN_SECONDS = 0.25
PITCH_FLOOR_HZ = 75.0
PITCH_CEILING_HZ = 600.0
# Praat's defaults are 0.03 and 0.45; lower thresholds mark more of the weakly voiced frames, which
# otherwise keep the original F0 (benchmarks.augmentation: praat_psola_v30 against praat_psola).
_PITCH_TIME_STEP_S = 0.01
_SILENCE_THRESHOLD = 0.01
_VOICING_THRESHOLD = 0.30
# The tilt boost: ``tilt/2 * log2(1 + (f / corner)^2)`` dB, i.e. ``tilt`` dB per octave well above the corner.
TILT_CORNER_HZ = 500.0
# Outputs peak at most here; the limiter's look-ahead window (gain changes are spread over it).
PEAK_LIMIT = 0.99
_LIMITER_WINDOW_S = 0.01
# The ranges, which draw_spec draws from.
F0_FACTOR_RANGE = (1.1, 1.6)
MAX_F0_RISE_HZ = 100.0
TILT_RANGE_DB_PER_OCTAVE = (0.0, 6.0)
GAIN_RANGE_DB = (0.0, 6.0)
TEMPO_RANGE = (1.0, 1.15)
# The mirror for women's voices (draw_lowered_spec): sad, subdued speech sits lower, softer and slower.
F0_LOWER_RANGE = (0.65, 0.9)
MIN_LOWERED_F0_HZ = 120.0  # lowered voices stay in the range women's voices reach, not men's 85-120 Hz
LOW_EFFORT_TILT_RANGE = (-6.0, 0.0)
LOW_EFFORT_GAIN_RANGE_DB = (-6.0, 0.0)
SLOW_TEMPO_RANGE = (0.87, 1.0)
# What the functions accept (wider than what draw_spec draws).
_F0_FACTOR_LIMITS = (0.5, 2.5)
_TILT_LIMITS = (-12.0, 12.0)
_GAIN_LIMITS = (-40.0, 40.0)
_TEMPO_LIMITS = (0.5, 2.0)


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """One draw of the augmentation; the identity by default.

    Attributes:
      f0_factor: F0 multiplier (formants kept).
      tilt_db_per_octave: high-frequency boost per octave above ``TILT_CORNER_HZ``.
      gain_db: level change, peak-limited to ``PEAK_LIMIT``.
      tempo: speaking-rate multiplier; above 1 the clip gets shorter, pitch unchanged.
    """

    f0_factor: float = 1.0
    tilt_db_per_octave: float = 0.0
    gain_db: float = 0.0
    tempo: float = 1.0

    def __post_init__(self):
        _check_range("f0_factor", self.f0_factor, _F0_FACTOR_LIMITS)
        _check_range("tilt_db_per_octave", self.tilt_db_per_octave, _TILT_LIMITS)
        _check_range("gain_db", self.gain_db, _GAIN_LIMITS)
        _check_range("tempo", self.tempo, _TEMPO_LIMITS)

    @property
    def tag(self) -> str:
        """A short name for records, e.g. ``f0x1.30_tilt3_gain6_tempo1.10`` (values rounded)."""
        return (f"f0x{self.f0_factor:.2f}_tilt{round(self.tilt_db_per_octave, 1):g}"
                f"_gain{round(self.gain_db, 1):g}_tempo{self.tempo:.2f}")

    @property
    def name(self) -> str:
        """Same as ``tag``."""
        return self.tag


def _check_range(name: str, value: float, limits: tuple[float, float]) -> None:
    if not (isinstance(value, int | float | np.floating | np.integer) and math.isfinite(value)
            and limits[0] <= value <= limits[1]):
        raise ValueError(f"{name} must be a finite number in [{limits[0]}, {limits[1]}], got {value!r}")


def _checked(waveform: np.ndarray, rate: int) -> np.ndarray:
    """The waveform as float64 after the checks every public function makes."""
    if rate != SAMPLE_RATE:
        raise ValueError(f"rate must be {SAMPLE_RATE} Hz, got {rate!r}; resample first")
    x = np.asarray(waveform)
    if x.ndim != 1:
        raise ValueError(f"waveform must be mono, 1-D; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"waveform must hold floats in [-1, 1], got dtype {x.dtype}")
    if len(x) < MIN_SECONDS * rate:
        raise ValueError(f"waveform too short: {len(x)} samples ({len(x) / rate:.3f} s), at least {MIN_SECONDS} s")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"waveform holds {int(np.sum(~np.isfinite(x)))} non-finite samples (NaN or inf)")
    return x.astype(np.float64)


def _finished(y: np.ndarray) -> np.ndarray:
    """float32, finite, peak at most PEAK_LIMIT (scaled down when above)."""
    if not np.all(np.isfinite(y)):
        raise RuntimeError("augmentation produced non-finite samples from a finite waveform")
    peak = float(np.max(np.abs(y), initial=0.0))
    if peak > PEAK_LIMIT:
        y = y * (PEAK_LIMIT / peak)
    return np.clip(y, -PEAK_LIMIT, PEAK_LIMIT).astype(np.float32)


def _pitch(sound: parselmouth.Sound) -> parselmouth.Pitch:
    return call(sound, "To Pitch (ac)", _PITCH_TIME_STEP_S, PITCH_FLOOR_HZ, 15, "no", _SILENCE_THRESHOLD,
                _VOICING_THRESHOLD, 0.01, 0.35, 0.14, PITCH_CEILING_HZ)


def _psola(x: np.ndarray, f0_factor: float, tempo: float) -> np.ndarray:
    """PSOLA resynthesis with F0 x f0_factor and duration / tempo, from one pitch analysis."""
    if f0_factor == 1.0 and tempo == 1.0:
        return x
    sound = parselmouth.Sound(x, SAMPLE_RATE)
    manipulation = call([sound, _pitch(sound)], "To Manipulation")
    if f0_factor != 1.0:
        tier = call(manipulation, "Extract pitch tier")
        call(tier, "Multiply frequencies", sound.xmin, sound.xmax, f0_factor)
        call([tier, manipulation], "Replace pitch tier")
    if tempo != 1.0:
        durations = call("Create DurationTier", "tempo", sound.xmin, sound.xmax)
        call(durations, "Add point", sound.xmin, 1.0 / tempo)
        call([manipulation, durations], "Replace duration tier")
    return call(manipulation, "Get resynthesis (overlap-add)").values[0]


def _tilt(x: np.ndarray, tilt_db_per_octave: float) -> np.ndarray:
    """Zero-phase boost of ``tilt/2 * log2(1 + (f / TILT_CORNER_HZ)^2)`` dB (a fractional-order pre-emphasis)."""
    if tilt_db_per_octave == 0.0:
        return x
    pad = 4096  # zero padding against circular wrap-around; the response is smooth, its impulse response short
    n = scipy.fft.next_fast_len(len(x) + pad, real=True)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    gain_db = 0.5 * tilt_db_per_octave * np.log2(1.0 + (freqs / TILT_CORNER_HZ) ** 2)
    return scipy.fft.irfft(scipy.fft.rfft(x, n) * 10.0 ** (gain_db / 20.0), n)[: len(x)]


def _gain_limited(x: np.ndarray, gain_db: float) -> np.ndarray:
    """x times the gain, through a look-ahead peak limiter: no sample above PEAK_LIMIT, no hard clipping.

    The gain reduction each sample needs is spread by a running minimum and then
    a moving average over the same centred window: every averaged value comes
    from minima whose windows contain the sample, so it never exceeds what the
    sample needs, and the gain moves smoothly (over 10 ms) instead of clipping.
    """
    y = x * 10.0 ** (gain_db / 20.0)
    magnitude = np.abs(y)
    if magnitude.max(initial=0.0) <= PEAK_LIMIT:
        return y
    needed = np.minimum(1.0, PEAK_LIMIT / np.maximum(magnitude, 1e-12))
    width = 2 * int(_LIMITER_WINDOW_S * SAMPLE_RATE / 2) + 1
    gain = scipy.ndimage.uniform_filter1d(scipy.ndimage.minimum_filter1d(needed, width, mode="nearest"), width,
                                          mode="nearest")
    return y * np.minimum(gain, needed)  # the minimum only absorbs the filters' rounding


def estimate_median_f0(waveform: np.ndarray, rate: int) -> float | None:
    """Median F0 of the voiced frames (Praat autocorrelation pitch, the analysis PSOLA uses).

    Cheap next to the augmentation itself; ``draw_spec`` uses it to cap the F0 rise.

    Args:
      waveform: mono float samples in [-1, 1].
      rate: their sample rate; must be ``SAMPLE_RATE``.

    Returns:
      The median F0 in Hz, or None when no frame is voiced.

    Raises:
      ValueError: wrong rate or shape, non-finite samples, shorter than ``MIN_SECONDS``.
    """
    x = _checked(waveform, rate)
    f0 = _pitch(parselmouth.Sound(x, SAMPLE_RATE)).selected_array["frequency"]
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) else None


def raise_pitch(waveform: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Scales F0 by ``factor`` and keeps the formants and the duration (PSOLA).

    Stretches Praat marks unvoiced are copied unchanged.

    Args:
      waveform: mono float samples in [-1, 1].
      rate: their sample rate; must be ``SAMPLE_RATE``.
      factor: F0 multiplier, in [0.5, 2.5] (the issue's range is 1.1-1.6).

    Returns:
      float32 samples, as many as the input, finite, peak at most ``PEAK_LIMIT``
      (the clip is scaled down when the resynthesis overshoots).

    Raises:
      ValueError: wrong rate or shape, non-finite samples, too short, factor out of range.
    """
    x = _checked(waveform, rate)
    _check_range("factor", factor, _F0_FACTOR_LIMITS)
    y = _psola(x, float(factor), 1.0)
    return _finished(np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)])


def vocal_effort(waveform: np.ndarray, rate: int, tilt_db_per_octave: float, gain_db: float,
                 tempo: float) -> np.ndarray:
    """Makes a clip sound more effortful: flatter tilt, more level, faster speech.

    Args:
      waveform: mono float samples in [-1, 1].
      rate: their sample rate; must be ``SAMPLE_RATE``.
      tilt_db_per_octave: boost per octave above ``TILT_CORNER_HZ`` (500 Hz): a
        zero-phase filter of ``tilt/2 * log2(1 + (f / 500)^2)`` dB, which is
        ~0 dB well below 500 Hz, tilt/2 dB at 500 Hz and tilt dB per octave
        above; in [-12, 12].
      gain_db: level change in dB, in [-40, 40]; peaks are held at
        ``PEAK_LIMIT`` by a smooth look-ahead limiter (no clipping).
      tempo: speaking-rate multiplier in [0.5, 2]: the output has about
        ``len / tempo`` samples; the pitch is unchanged (PSOLA).

    Returns:
      float32 samples, finite, peak at most ``PEAK_LIMIT``.

    Raises:
      ValueError: wrong rate or shape, non-finite samples, too short, a parameter out of range.
    """
    spec = AugmentSpec(tilt_db_per_octave=tilt_db_per_octave, gain_db=gain_db, tempo=tempo)
    return apply(waveform, rate, spec)


def apply(waveform: np.ndarray, rate: int, spec: AugmentSpec) -> np.ndarray:
    """Applies every part of ``spec``: F0 and tempo in one PSOLA pass, then tilt, then gain and limiting.

    Args:
      waveform: mono float samples in [-1, 1].
      rate: their sample rate; must be ``SAMPLE_RATE``.
      spec: what to change.

    Returns:
      float32 samples, about ``len / spec.tempo`` of them, finite, peak at most ``PEAK_LIMIT``.

    Raises:
      ValueError: wrong rate or shape, non-finite samples, too short.
    """
    x = _checked(waveform, rate)
    y = _psola(x, spec.f0_factor, spec.tempo)
    y = _tilt(y, spec.tilt_db_per_octave)
    y = _gain_limited(y, spec.gain_db)
    return _finished(y)


def draw_spec(
    rng: np.random.Generator,
    median_f0_hz: float | None = None,
    *,
    f0_factor_range: tuple[float, float] = F0_FACTOR_RANGE,
    max_f0_rise_hz: float = MAX_F0_RISE_HZ,
    tilt_range: tuple[float, float] = TILT_RANGE_DB_PER_OCTAVE,
    gain_range_db: tuple[float, float] = GAIN_RANGE_DB,
    tempo_range: tuple[float, float] = TEMPO_RANGE,
) -> AugmentSpec:
    """A random spec in the issue's ranges; the same rng state gives the same spec.

    Each field is uniform in its range. With ``median_f0_hz`` (e.g. from
    ``estimate_median_f0``) the F0 factor's upper end is lowered so that the
    median rises by at most ``max_f0_rise_hz``: 1 + 100 / 200 = 1.5 for a
    200 Hz voice; when even the lower end would exceed that, the factor is the cap.

    Args:
      rng: the generator; exactly four uniforms are drawn from it.
      median_f0_hz: the clip's median F0, or None for no cap.
      f0_factor_range: (low, high) F0 factor.
      max_f0_rise_hz: the most the median F0 may rise, Hz.
      tilt_range: (low, high) dB per octave.
      gain_range_db: (low, high) dB.
      tempo_range: (low, high) tempo.

    Returns:
      The spec.
    """
    low, high = f0_factor_range
    if median_f0_hz is not None and median_f0_hz > 0:
        high = min(high, 1.0 + max_f0_rise_hz / median_f0_hz)
        low = min(low, high)
    spec = _uniform_spec(rng, ((low, high), tilt_range, gain_range_db, tempo_range))
    return dataclasses.replace(spec, f0_factor=max(1.0, spec.f0_factor))


def _uniform_spec(rng: np.random.Generator, ranges: tuple[tuple[float, float], ...]) -> AugmentSpec:
    """An AugmentSpec with each field uniform in its (low, high): four draws from rng."""
    u = rng.random(4)
    f0, tilt, gain, tempo = (float(lo + v * (hi - lo)) for v, (lo, hi) in zip(u, ranges, strict=True))
    return AugmentSpec(f0_factor=f0, tilt_db_per_octave=tilt, gain_db=gain, tempo=tempo)


def draw_lowered_spec(
    rng: np.random.Generator,
    median_f0_hz: float | None = None,
    *,
    f0_factor_range: tuple[float, float] = F0_LOWER_RANGE,
    min_f0_hz: float = MIN_LOWERED_F0_HZ,
    tilt_range: tuple[float, float] = LOW_EFFORT_TILT_RANGE,
    gain_range_db: tuple[float, float] = LOW_EFFORT_GAIN_RANGE_DB,
    tempo_range: tuple[float, float] = SLOW_TEMPO_RANGE,
) -> AugmentSpec:
    """``draw_spec``'s mirror: F0 lowered (formants kept), steeper tilt, softer, slower.

    Meant for women's clips: a model that has seen men's voices only raised
    may learn "high F0 may be a man" and call low-pitched women men (sad
    speech); lowered female copies say that F0 alone does not decide.
    Measured (WORKSPACE.md, issue 9's candidates): lowering *every* woman's
    copy makes the raised, effortful copies a male cue; half of them helped.
    With ``median_f0_hz`` the factor's lower end is raised so that the median
    stays at or above ``min_f0_hz``: at least 0.6 for a 200 Hz voice, 0.8 for
    150 Hz; a voice already below ``min_f0_hz / high`` gets the range's upper
    end (at most 1.0: never raised).

    Args:
      rng: the generator; exactly four uniforms are drawn from it.
      median_f0_hz: the clip's median F0, or None for no floor.
      f0_factor_range: (low, high) F0 factor, both at most 1.
      min_f0_hz: the lowest median F0 a lowered copy may have, Hz.
      tilt_range: (low, high) dB per octave (negative: steeper, duller).
      gain_range_db: (low, high) dB.
      tempo_range: (low, high) tempo (below 1: slower).

    Returns:
      The spec.
    """
    low, high = f0_factor_range
    if median_f0_hz is not None and median_f0_hz > 0:
        low = min(max(low, min_f0_hz / median_f0_hz), max(high, 1.0))
        high = max(high, low)
    spec = _uniform_spec(rng, ((low, high), tilt_range, gain_range_db, tempo_range))
    return dataclasses.replace(spec, f0_factor=min(1.0, spec.f0_factor))
