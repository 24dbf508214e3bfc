"""Fitting a ``Calibration`` and measuring one: the methods, out-of-fold scores, ECE, reliability and the
coverage curve (definitions in ``model.predict.calibration``, which applies what is fitted here).

scikit-learn (and scipy) are imported when a fit runs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np

from model.predict.calibration import (
    IDENTITY,
    ISOTONIC,
    METHODS,
    PLATT,
    TEMPERATURE,
    TEMPERATURE_RANGE,
    Calibration,
    check_pairs,
    finite_float,
    identity,
    logit,
    predicted_labels,
)


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
    p, y = check_pairs(p, y)
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
    z = logit(p)[:, None]
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

    z = logit(p)
    sign = 2 * y - 1

    def nll(log_t: float) -> float:
        # -log sigmoid(sign * z / T), stably: logaddexp(0, -m).
        return float(np.mean(np.logaddexp(0.0, -sign * z / math.exp(log_t))))

    # The loss is convex in 1/T, hence unimodal in log T; the bounds keep it finite when validation is
    # perfectly separated (the unbounded optimum is then T -> 0).
    lo, hi = (math.log(t) for t in TEMPERATURE_RANGE)
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

    p, y = check_pairs(p, y)
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
    p, y = check_pairs(p, y)
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
    p, y = check_pairs(p, y)
    conf = np.maximum(p, 1.0 - p)
    wrong = predicted_labels(p) != y
    points = []
    for c in thresholds:
        c = finite_float(c, "confidence threshold")
        answered = conf >= c
        n = int(answered.sum())
        points.append(CoveragePoint(c, n, n / len(p), float(wrong[answered].mean()) if n else float("nan")))
    return points


def balanced_accuracy(p: np.ndarray, y: np.ndarray) -> float:
    """Mean of male and female recall at the 0.5 decision (NaN when a gender is absent)."""
    predicted = predicted_labels(np.asarray(p, np.float64))
    y = np.asarray(y)
    recalls = [float(np.mean(predicted[y == g] == g)) for g in (0, 1) if np.any(y == g)]
    return float(np.mean(recalls)) if len(recalls) == 2 else float("nan")


@dataclasses.dataclass(frozen=True)
class MethodScore:
    """A method's cross-validated figures on one set of clips (means over fold assignments)."""

    method: str
    cv_ece: float
    cv_ece_sd: float
    cv_balanced_accuracy: float
    first_out_of_fold: np.ndarray  # the first assignment's out-of-fold scores


def cross_validated(p: np.ndarray, y: np.ndarray, speakers: np.ndarray, method: str, folds: int = 5,
                    repeats: int = 10, seed: int = 0, bins: int = 10) -> MethodScore:
    """Mean out-of-fold ECE and balanced accuracy of ``method`` over ``repeats`` fold assignments by speaker.

    One 5-fold assignment of ~100 speakers moves the ECE by ~0.005 (measured: sd 0.005 over 20
    assignments), as much as the methods differ; the mean over assignments is what a choice compares.

    Raises:
      ValueError: as ``out_of_fold``.
    """
    eces, accuracies, first = [], [], None
    for repeat in range(repeats):
        oof = out_of_fold(p, y, method, folds, speakers, seed + repeat)
        first = oof if first is None else first
        eces.append(expected_calibration_error(oof, y, bins))
        accuracies.append(balanced_accuracy(oof, y))
    return MethodScore(method, float(np.mean(eces)), float(np.std(eces)), float(np.mean(accuracies)), first)


# Equal cross-validated ECEs (to 4 digits) go to the method with fewer parameters.
SIMPLEST_FIRST = (TEMPERATURE, PLATT, ISOTONIC)


def choose_method(scores: dict[str, MethodScore], raw_balanced_accuracy: float) -> str:
    """The fitted method (temperature, Platt, isotonic) with the lowest cross-validated ECE among those that
    keep the balanced accuracy; ``identity`` only when none qualifies.

    Platt and isotonic can move the decision point; a method whose
    cross-validated balanced accuracy is below the raw scores' is out.
    ``identity``'s own cross-validated ECE is reported beside them but does
    not compete: the choice ``benchmarks.calibration`` made for the shipped
    model (issue 11), kept so the step reproduces it.
    """
    candidates = [m for m in SIMPLEST_FIRST if m in scores
                  and scores[m].cv_balanced_accuracy >= raw_balanced_accuracy - 1e-9]
    return min(candidates or [IDENTITY], key=lambda m: round(scores[m].cv_ece, 4) if m in scores else math.inf)


def fit_chosen(p: np.ndarray, y: np.ndarray, speakers: np.ndarray, folds: int = 5, repeats: int = 10,
               seed: int = 0, bins: int = 10) -> tuple[Calibration, dict]:
    """Cross-validates every method on these clips, chooses one (``choose_method``) and fits it on all of them.

    With too few speakers to cross-validate (fewer than 2 folds), temperature
    scaling is fitted on all of them: one parameter, and it never moves the
    decision at 0.5.

    Returns:
      (the fitted calibration, a record of the choice: method, clips, speakers, ECE before and after).

    Raises:
      ValueError: the scores or labels are unusable (non-finite, one gender only).
    """
    p, y = check_pairs(p, y)
    if len(set(y.tolist())) < 2:
        raise ValueError("calibration needs clips of both genders")
    scores: dict[str, MethodScore] = {}
    for method in (IDENTITY, *METHODS):
        try:
            scores[method] = cross_validated(p, y, speakers, method, folds, repeats, seed, bins)
        except ValueError:
            continue  # too few speakers to cross-validate, or a method that cannot fit these scores
    chosen = choose_method(scores, balanced_accuracy(p, y)) if scores else TEMPERATURE
    calibration = identity() if chosen == IDENTITY else fit(p, y, chosen)
    record = {"method": chosen, "cross_validated": bool(scores), "clips": int(len(p)),
              "speakers": len(set(np.asarray(speakers).tolist())),
              "ece_before": expected_calibration_error(p, y, bins),
              "ece_after_in_sample": expected_calibration_error(calibration.apply(p), y, bins)}
    if chosen in scores:
        record["cv_ece"] = scores[chosen].cv_ece
    return calibration, record
