"""Calibrating ``p_female`` and measuring calibration, for confidence and an "uncertain" answer.

A model's ``p_female`` ranks clips well but need not mean what it says: of
the clips it gives 0.9, far fewer or more than 90% may be female. A
``Calibration`` maps the raw score to a probability fitted on held-out data
(validation clips, never the clips it is judged on); it is a small, JSON-safe
object stored beside the model, so ``predict`` can apply it.

Methods (all monotone in ``p``, so they never reorder clips):

  identity     p, unchanged (no calibration).
  platt        sigmoid(slope * logit(p) + intercept): logistic regression on
               the logit, with Platt's smoothed targets (N+ + 1)/(N+ + 2) and
               1/(N- + 2), which keep the slope finite when validation
               separates the genders perfectly.
  temperature  sigmoid(logit(p) / temperature): one scale on the logit, no
               bias, so the decision at 0.5 never changes.
  isotonic     a non-decreasing step curve through the validation scores
               (scikit-learn's pool-adjacent-violators), stored as its
               breakpoints and applied by linear interpolation (``np.interp``;
               flat beyond the first and last breakpoint).

Definitions used throughout (binary, predicted class = female iff p >= 0.5):

  confidence(p) = max(p, 1 - p), in [0.5, 1].
  ECE = sum over bins b of (n_b / n) * |accuracy_b - mean confidence_b|, with
        ``bins`` equal-width bins spanning [0.5, 1] (the range confidence can
        take: bins over [0, 1] would leave half of them empty), where
        accuracy_b is the share of clips of bin b whose predicted class is
        right. The last bin includes 1.0.

Only numpy is imported here: ``predict`` stays TensorFlow- and sklearn-free.
Fitting and measuring (``fit``, ``out_of_fold``, ECE, reliability, the
coverage curve) live in ``model.calibrate.fitting``, which imports
scikit-learn when a fit runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

IDENTITY, PLATT, TEMPERATURE, ISOTONIC = "identity", "platt", "temperature", "isotonic"
METHODS = (PLATT, TEMPERATURE, ISOTONIC)  # the methods ``fit`` knows
THRESHOLD = 0.5  # p >= THRESHOLD is a female answer (the classifier's threshold)
# Scores are clipped to [EPS, 1 - EPS] before the logit: a float32 mean of sigmoids can be exactly 0 or 1,
# whose logit is infinite. logit(1e-6) = -13.8, beyond any score the model gives a real clip.
EPS = 1e-6
# Temperature search range: beyond it the calibrated scores are constant 0.5 or hard 0/1 answers.
TEMPERATURE_RANGE = (1e-3, 1e3)

# Parameters each method stores, in to_dict's order.
_PARAMS: dict[str, tuple[str, ...]] = {
    IDENTITY: (),
    PLATT: ("slope", "intercept"),
    TEMPERATURE: ("temperature",),
    ISOTONIC: ("x", "y"),
}


def sigmoid(z: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warning for large |z|, unlike 1 / (1 + exp(-z)).
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def check_scores(p: Any, name: str = "p_female") -> np.ndarray:
    """``p`` as float64, refused unless every value is a finite probability."""
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numbers in [0, 1] ({e})") from None
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)]
        raise ValueError(f"{name} must be finite; got {bad.size} non-finite value(s), e.g. {bad.flat[0]}")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{arr.min()}, {arr.max()}]")
    return arr


def check_pairs(p: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scores, 0/1 labels) as 1-D arrays of equal, non-zero length, or ValueError."""
    p = check_scores(p).ravel()
    labels = np.asarray(y).ravel()
    if p.size == 0:
        raise ValueError("no clips: scores and labels are empty")
    if labels.shape != p.shape:
        raise ValueError(f"{p.size} scores but {labels.size} labels")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError(f"labels must be 0 (male) or 1 (female); got {sorted(set(labels.tolist()) - {0, 1})[:5]}")
    return p, labels.astype(np.int64)


def finite_float(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, got {number}")
    return number


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A fitted map from the model's ``p_female`` to a calibrated probability.

    Attributes:
      method: ``identity``, ``platt``, ``temperature`` or ``isotonic``.
      params: the method's parameters: ``slope`` and ``intercept`` (platt),
        ``temperature``, or ``x`` and ``y`` (isotonic breakpoints, tuples of
        equal length); none for identity. Checked on construction: finite,
        and such that ``apply`` is non-decreasing and maps into [0, 1].

    Raises:
      ValueError: an unknown method, missing or extra parameters, or values
        that are not finite or would not give a monotone probability.
    """

    method: str
    params: Mapping[str, float | tuple[float, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.method not in _PARAMS:
            raise ValueError(f"unknown calibration method {self.method!r}; known: {', '.join(_PARAMS)}")
        expected = set(_PARAMS[self.method])
        if set(self.params) != expected:
            raise ValueError(f"{self.method} calibration needs parameters {sorted(expected)}, got {sorted(self.params)}")
        # Normalized copies (floats, tuples), so a caller's list or numpy array cannot change a frozen object later.
        params: dict[str, float | tuple[float, ...]] = {}
        if self.method == ISOTONIC:
            for key in ("x", "y"):
                values = self.params[key]
                if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
                    raise ValueError(f"isotonic {key} must be a list of numbers, got {type(values).__name__}")
                params[key] = tuple(finite_float(v, f"isotonic {key}") for v in values)
            x, y = np.array(params["x"]), np.array(params["y"])
            if x.size == 0 or x.size != y.size:
                raise ValueError(f"isotonic needs as many x as y breakpoints (>= 1); got {x.size} and {y.size}")
            if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic breakpoints must be non-decreasing in x and y")
            if x[0] < 0 or x[-1] > 1 or y[0] < 0 or y[-1] > 1:
                raise ValueError("isotonic breakpoints must lie in [0, 1]")
        else:
            params = {key: finite_float(self.params[key], f"{self.method} {key}") for key in _PARAMS[self.method]}
            if self.method == PLATT and params["slope"] <= 0:
                raise ValueError(f"platt slope must be positive (a monotone calibration), got {params['slope']}")
            if self.method == TEMPERATURE and params["temperature"] <= 0:
                raise ValueError(f"temperature must be positive, got {params['temperature']}")
        object.__setattr__(self, "params", params)

    def apply(self, p_female: np.ndarray | float) -> np.ndarray | float:
        """The calibrated probability of each score; a float for a float, an array of the same shape otherwise.

        Raises:
          ValueError: a score that is not finite or outside [0, 1].
        """
        p = check_scores(p_female)
        if self.method == IDENTITY:
            out = p
        elif self.method == PLATT:
            out = sigmoid(self.params["slope"] * logit(p) + self.params["intercept"])
        elif self.method == TEMPERATURE:
            out = sigmoid(logit(p) / self.params["temperature"])
        else:
            out = np.interp(p, self.params["x"], self.params["y"])
        out = np.clip(out, 0.0, 1.0)  # rounding of the sigmoid must never leave [0, 1]
        return float(out) if np.ndim(p_female) == 0 else out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (finite floats and lists only), for ``voicegender.json`` or a report."""
        return {"method": self.method,
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        """The inverse of ``to_dict``.

        Raises:
          ValueError: not a mapping with ``method`` (and ``params``), or invalid parameters.
        """
        if not isinstance(d, Mapping) or "method" not in d:
            raise ValueError(f"a calibration must be a mapping with a 'method', got {d!r:.200}")
        params = d.get("params", {})
        if not isinstance(params, Mapping):
            raise ValueError(f"calibration params must be a mapping, got {type(params).__name__}")
        return cls(str(d["method"]), dict(params))


IDENTITY_CALIBRATION = Calibration(IDENTITY)


def identity() -> Calibration:
    """The calibration that changes nothing (a model without a stored calibration)."""
    return IDENTITY_CALIBRATION


def confidence(p: np.ndarray | float) -> np.ndarray | float:
    """max(p, 1 - p): the probability the model gives its own answer; a float for a float.

    Raises:
      ValueError: a score that is not finite or outside [0, 1].
    """
    arr = check_scores(p)
    out = np.maximum(arr, 1.0 - arr)
    return float(out) if np.ndim(p) == 0 else out


def predicted_labels(p: np.ndarray) -> np.ndarray:
    """1 (female) where p >= THRESHOLD, else 0 (male)."""
    return (check_scores(p) >= THRESHOLD).astype(np.int64)
