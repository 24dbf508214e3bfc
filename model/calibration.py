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
The fitting functions import scikit-learn (and scipy) when called.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
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
_TEMPERATURE_RANGE = (1e-3, 1e3)

# Parameters each method stores, in to_dict's order.
_PARAMS: dict[str, tuple[str, ...]] = {
    IDENTITY: (),
    PLATT: ("slope", "intercept"),
    TEMPERATURE: ("temperature",),
    ISOTONIC: ("x", "y"),
}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warning for large |z|, unlike 1 / (1 + exp(-z)).
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def _check_scores(p: Any, name: str = "p_female") -> np.ndarray:
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


def _check_pairs(p: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scores, 0/1 labels) as 1-D arrays of equal, non-zero length, or ValueError."""
    p = _check_scores(p).ravel()
    labels = np.asarray(y).ravel()
    if p.size == 0:
        raise ValueError("no clips: scores and labels are empty")
    if labels.shape != p.shape:
        raise ValueError(f"{p.size} scores but {labels.size} labels")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError(f"labels must be 0 (male) or 1 (female); got {sorted(set(labels.tolist()) - {0, 1})[:5]}")
    return p, labels.astype(np.int64)


def _finite_float(value: Any, what: str) -> float:
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
                params[key] = tuple(_finite_float(v, f"isotonic {key}") for v in values)
            x, y = np.array(params["x"]), np.array(params["y"])
            if x.size == 0 or x.size != y.size:
                raise ValueError(f"isotonic needs as many x as y breakpoints (>= 1); got {x.size} and {y.size}")
            if np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic breakpoints must be non-decreasing in x and y")
            if x[0] < 0 or x[-1] > 1 or y[0] < 0 or y[-1] > 1:
                raise ValueError("isotonic breakpoints must lie in [0, 1]")
        else:
            params = {key: _finite_float(self.params[key], f"{self.method} {key}") for key in _PARAMS[self.method]}
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
        p = _check_scores(p_female)
        if self.method == IDENTITY:
            out = p
        elif self.method == PLATT:
            out = _sigmoid(self.params["slope"] * _logit(p) + self.params["intercept"])
        elif self.method == TEMPERATURE:
            out = _sigmoid(_logit(p) / self.params["temperature"])
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
    arr = _check_scores(p)
    out = np.maximum(arr, 1.0 - arr)
    return float(out) if np.ndim(p) == 0 else out


def predicted_labels(p: np.ndarray) -> np.ndarray:
    """1 (female) where p >= THRESHOLD, else 0 (male)."""
    return (_check_scores(p) >= THRESHOLD).astype(np.int64)


def fit(p: np.ndarray, y: np.ndarray, method: str) -> Calibration:
    """Fits a calibration of the scores ``p`` to the labels ``y`` (validation clips).

    Args:
      p: the model's p_female per clip, in [0, 1].
      y: 0 (male) / 1 (female) per clip.
      method: one of ``METHODS`` (or ``identity``, which fits nothing).

    Returns:
      The fitted calibration.

    Raises:
      ValueError: an unknown method, mismatched or non-finite inputs, or
        scores that rank the genders backwards (a negative Platt slope).
    """
    p, y = _check_pairs(p, y)
    if method == IDENTITY:
        return identity()
    if method == PLATT:
        return _fit_platt(p, y)
    if method == TEMPERATURE:
        return _fit_temperature(p, y)
    if method == ISOTONIC:
        return _fit_isotonic(p, y)
    raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")


def _fit_platt(p: np.ndarray, y: np.ndarray) -> Calibration:
    from sklearn.linear_model import LogisticRegression

    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))  # Platt (1999)
    # Soft targets as two weighted copies of each clip (sklearn takes hard labels only): the loss is then
    # exactly the cross-entropy against the smoothed targets, and both classes are present even in a fold
    # with one gender.
    z = _logit(p)[:, None]
    x2 = np.concatenate([z, z])
    y2 = np.concatenate([np.ones_like(y), np.zeros_like(y)])
    w2 = np.concatenate([target, 1 - target])
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(x2, y2, sample_weight=w2)
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    if slope <= 0:
        raise ValueError(f"platt: the scores rank the genders backwards or not at all (fitted slope {slope:.4g})")
    return Calibration(PLATT, {"slope": slope, "intercept": intercept})


def _fit_temperature(p: np.ndarray, y: np.ndarray) -> Calibration:
    from scipy import optimize

    z = _logit(p)
    sign = 2 * y - 1

    def nll(log_t: float) -> float:
        # -log sigmoid(sign * z / T), stably: logaddexp(0, -m).
        return float(np.mean(np.logaddexp(0.0, -sign * z / math.exp(log_t))))

    # The loss is convex in 1/T, hence unimodal in log T; the bounds keep it finite when validation is
    # perfectly separated (the unbounded optimum is then T -> 0).
    lo, hi = (math.log(t) for t in _TEMPERATURE_RANGE)
    result = optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return Calibration(TEMPERATURE, {"temperature": math.exp(float(result.x))})


def _fit_isotonic(p: np.ndarray, y: np.ndarray) -> Calibration:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(p, y)
    # The breakpoints reproduce the fitted curve exactly under np.interp (sklearn predicts by the same
    # linear interpolation), and beyond them np.interp is flat, as out_of_bounds="clip".
    return Calibration(ISOTONIC, {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()})


def out_of_fold(p: np.ndarray, y: np.ndarray, method: str, folds: int = 5,
                groups: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Calibrated scores of every clip from a calibration fitted without it (k-fold cross-validation).

    Used to choose a method on validation alone: the ECE of these scores is an
    honest estimate of each method's ECE on unseen clips.

    Args:
      p: scores, y: labels, method: as for ``fit``.
      folds: number of folds; lowered to what the data allows (the number
        of groups, or of clips of the rarer gender), at least 2.
      groups: e.g. speaker ids: a group's clips are never split across
        folds, so a speaker's other clips cannot vouch for it.
      seed: shuffles the folds.

    Returns:
      The out-of-fold calibrated p_female, in the order of ``p``.

    Raises:
      ValueError: as ``fit``, or fewer than 2 folds possible.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    p, y = _check_pairs(p, y)
    if groups is None:
        k = min(folds, int(np.bincount(y, minlength=2).min()))  # every fold holds both genders
    else:
        groups = np.asarray(groups)
        if groups.shape != p.shape:
            raise ValueError(f"{p.size} scores but {groups.size} groups")
        k = min(folds, len(set(groups.tolist())))
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds; the data allows {k}")
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(p[:, None], y)
    else:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(p[:, None], y, groups)
    out = np.empty_like(p)
    with warnings.catch_warnings():
        # Fewer clips of a gender than folds is expected on small data; a fold without one gender still fits
        # (Platt's targets keep both classes, temperature and isotonic need none).
        warnings.filterwarnings("ignore", "The least populated class in y", UserWarning)
        for train, held in splits:
            out[held] = fit(p[train], y[train], method).apply(p[held])
    return out


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float | int]]:
    """The reliability table behind ``expected_calibration_error``: one row per non-empty bin.

    Returns:
      Rows ``{"low", "high", "clips", "confidence", "accuracy"}`` (mean
      confidence and accuracy of the bin's clips), in increasing confidence.
    """
    p, y = _check_pairs(p, y)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    conf = np.maximum(p, 1.0 - p)
    correct = predicted_labels(p) == y
    edges = np.linspace(0.5, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)  # 1.0 joins the last bin
    rows = []
    for b in range(bins):
        member = index == b
        if member.any():
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "clips": int(member.sum()),
                         "confidence": float(conf[member].mean()), "accuracy": float(correct[member].mean())})
    return rows


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of binary scores (see the module docstring for the exact definition).

    Args:
      p: p_female per clip, in [0, 1].
      y: 0 (male) / 1 (female) per clip.
      bins: equal-width confidence bins over [0.5, 1].

    Returns:
      ECE in [0, 0.5]: the clip-weighted mean gap between confidence and accuracy.

    Raises:
      ValueError: empty, mismatched or non-finite inputs, labels not 0/1, bins < 1.
    """
    rows = reliability(p, y, bins)
    n = sum(r["clips"] for r in rows)
    return float(sum(r["clips"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / n)


@dataclasses.dataclass(frozen=True)
class CoveragePoint:
    """What a minimum confidence C does: clips answered (confidence >= C) and how many of those are wrong.

    Attributes:
      threshold: C.
      answered: clips with confidence >= C.
      coverage: answered / all clips.
      error_rate: wrong / answered among the answered clips (NaN when none is answered).
    """

    threshold: float
    answered: int
    coverage: float
    error_rate: float

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe (an undefined error rate is None)."""
        return {"threshold": self.threshold, "answered": self.answered, "coverage": self.coverage,
                "error_rate": self.error_rate if math.isfinite(self.error_rate) else None}


def coverage_curve(p: np.ndarray, y: np.ndarray, thresholds: Sequence[float]) -> list[CoveragePoint]:
    """For each minimum confidence C: the share of clips answered and the share of those answered wrong.

    Args:
      p: p_female per clip, in [0, 1] (calibrated or not).
      y: 0 (male) / 1 (female) per clip.
      thresholds: the values of C, each in [0.5, 1] (below 0.5 every clip is answered).

    Returns:
      One ``CoveragePoint`` per threshold, in the given order.

    Raises:
      ValueError: as ``expected_calibration_error``, or a threshold that is not finite.
    """
    p, y = _check_pairs(p, y)
    conf = np.maximum(p, 1.0 - p)
    wrong = predicted_labels(p) != y
    points = []
    for c in thresholds:
        c = _finite_float(c, "confidence threshold")
        answered = conf >= c
        n = int(answered.sum())
        points.append(CoveragePoint(c, n, n / len(p), float(wrong[answered].mean()) if n else float("nan")))
    return points
