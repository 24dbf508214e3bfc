"""Block- and clip-level predictions and metrics on a preprocessed split.

Block accuracy is the seed article's measure; clip accuracy (the mean of a
clip's block probabilities) is what a user of ``predict`` gets. Metrics are
also broken down by locale, age and accent: where does the model fail?
The metrics themselves are scikit-learn's (``sklearn.metrics``); this module
adds the thresholding, the report layout and the edge cases sklearn refuses
(empty input, one gender absent).
"""

from __future__ import annotations

import collections
import dataclasses
import warnings

import numpy as np
import tf_keras as keras
from sklearn import metrics
from sklearn.exceptions import UndefinedMetricWarning

from pipeline import features, inputs
from pipeline.metadata import Normalizer

MIN_GROUP_CLIPS = 5  # smaller groups are listed but not plotted: their accuracy is noise


@dataclasses.dataclass
class SplitPredictions:
    """Per-block predictions of one split, with what identifies each block."""

    p_female: np.ndarray  # float32 [blocks]
    labels: np.ndarray  # int [blocks]
    clip_ids: np.ndarray  # str [blocks]
    speaker_ids: np.ndarray  # str [blocks]
    ages: np.ndarray | None = None  # str [blocks]
    accents: np.ndarray | None = None  # str [blocks]


def predict_split(model: keras.Model, data_dir: str, split: str, feature_set: features.FeatureSet,
                  normalizer: Normalizer, batch_size: int = 256) -> SplitPredictions:
    """Runs ``model`` over every block of ``split`` once, in file order."""
    config = inputs.InputConfig(data_dir, split, batch_size, read=inputs.ReadOptions(deterministic=True),
                                with_info=True)
    columns = collections.defaultdict(list)
    for blocks, labels, info in inputs.iterate_checked(inputs.make_dataset(config, feature_set, normalizer),
                                                        inputs.list_shards(data_dir, split)):
        columns["p"].append(model(blocks, training=False).numpy()[:, 0])
        columns["y"].append(labels.numpy().astype(int))
        for key in (features.CLIP_ID_KEY, features.SPEAKER_ID_KEY, features.AGE_KEY, features.ACCENT_KEY):
            columns[key].append(np.char.decode(info[key].numpy().astype(bytes), "utf-8"))
    if not columns["p"]:
        raise ValueError(f"{data_dir}: split {split!r} has no blocks")
    c = {k: np.concatenate(v) for k, v in columns.items()}
    return SplitPredictions(c["p"], c["y"], c[features.CLIP_ID_KEY], c[features.SPEAKER_ID_KEY],
                            c[features.AGE_KEY], c[features.ACCENT_KEY])


@dataclasses.dataclass
class ClipPredictions:
    """One row per clip."""

    clip_ids: np.ndarray
    p_female: np.ndarray  # mean block probability
    labels: np.ndarray
    groups: dict[str, np.ndarray]  # locale / age / accent (and attributes: see pipeline.attributes) per clip


def clip_level(pred: SplitPredictions) -> ClipPredictions:
    """Averages block probabilities per clip."""
    order, first, inverse = np.unique(pred.clip_ids, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=pred.p_female)
    counts = np.bincount(inverse)
    groups = {"locale": np.array([c.split("/", 1)[0] for c in order])}
    if pred.ages is not None:
        groups["age"] = np.where(pred.ages[first] == "", "(blank)", pred.ages[first])
    if pred.accents is not None:
        groups["accent"] = np.where(pred.accents[first] == "", "(blank)", pred.accents[first])
    return ClipPredictions(order, sums / counts, pred.labels[first], groups)


GENDER_LABELS = (features.MALE, features.FEMALE)  # sklearn's label order: confusion rows/columns, per-gender lists


def _predict(p: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted labels: female at or above ``threshold``."""
    return (p >= threshold).astype(int)


def roc_curve(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates ("female" positive) at every distinct score, from (0, 0) to (1, 1).

    ``sklearn.metrics.roc_curve`` with every point kept (``drop_intermediate=False``): without tied scores
    this is one point per prediction. Tied scores are one threshold, joined by a straight segment, so the
    area under the drawn curve is ``roc_auc`` (ties count half).

    Args:
      p: female probability per prediction.
      y: true label per prediction (``features.FEMALE`` is positive).

    Returns:
      ``(fpr, tpr)``, float64. A rate whose gender is absent is 0 throughout (the curve runs along
      that axis) rather than sklearn's NaN; empty input gives the single point (0, 0).
    """
    if len(y) == 0:
        return np.zeros(1), np.zeros(1)
    with warnings.catch_warnings():
        # One gender absent: sklearn warns and divides by zero; the plot draws 0 instead.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, _ = metrics.roc_curve(y, p, pos_label=features.FEMALE, drop_intermediate=False)
    return np.nan_to_num(fpr, nan=0.0), np.nan_to_num(tpr, nan=0.0)


def roc_auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (probability a female clip scores above a male one; ties count half).

    Returns:
      ``sklearn.metrics.roc_auc_score``, or NaN when one gender is absent (sklearn raises there).
    """
    if not (np.any(y == features.FEMALE) and np.any(y == features.MALE)):
        return float("nan")
    return float(metrics.roc_auc_score(y, p))


def balanced_accuracy(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of male and female recall over the genders present (``sklearn.metrics.balanced_accuracy_score``).

    Returns:
      The balanced accuracy, or NaN for empty input (sklearn raises there).
    """
    if len(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        # A one-gender group (an age or accent only men gave) is expected: sklearn then averages the recall of
        # the gender present, which is what we want, but warns about the other.
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        return float(metrics.balanced_accuracy_score(y, _predict(p, threshold)))


def binary_metrics(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, per-gender precision and recall, ROC AUC, confusion matrix.

    The confusion matrix is ``[[male->male, male->female], [female->male, female->female]]``
    (rows: true gender, columns: predicted), ``sklearn.metrics.confusion_matrix``. Precision and recall
    are 0 where nothing was predicted or present (``zero_division=0``).

    Args:
      p: female probability per prediction.
      y: true label per prediction.
      threshold: female at or above it.

    Returns:
      ``count``, ``accuracy``, ``balanced_accuracy``, ``roc_auc``, ``confusion`` and per gender name
      ``{precision, recall, count}``; plain Python numbers (JSON). Empty input: counts 0, rates NaN.
    """
    predicted = _predict(p, threshold)
    if len(y) == 0:  # sklearn refuses empty input; an empty split has no predictions but a valid report
        confusion, precision, recall = np.zeros((2, 2), int), np.zeros(2), np.zeros(2)
    else:
        confusion = metrics.confusion_matrix(y, predicted, labels=GENDER_LABELS)
        precision, recall, _, _ = metrics.precision_recall_fscore_support(
            y, predicted, labels=GENDER_LABELS, zero_division=0)
    per_gender = {name: {"precision": float(precision[label]), "recall": float(recall[label]),
                         "count": int(confusion[label].sum())}
                  for label, name in zip(GENDER_LABELS, features.GENDER_NAMES, strict=True)}
    return {
        "count": int(len(y)),
        "accuracy": float(metrics.accuracy_score(y, predicted)) if len(y) else float("nan"),
        "balanced_accuracy": balanced_accuracy(p, y, threshold),
        "roc_auc": roc_auc(p, y),
        "confusion": confusion.tolist(),
        **per_gender,
    }


def group_metrics(clips: ClipPredictions) -> dict[str, dict[str, dict]]:
    """Clip accuracy, balanced accuracy and per-gender recall per value of each group (locale, age, accent,
    and any attribute such as emotion)."""
    out: dict[str, dict[str, dict]] = {}
    for group, values in clips.groups.items():
        out[group] = {}
        for value in sorted(set(values)):
            mask = values == value
            p, y = clips.p_female[mask], clips.labels[mask]
            predicted = _predict(p, 0.5)
            out[group][str(value)] = {
                "clips": int(mask.sum()),
                "male": int(np.sum(y == 0)),
                "female": int(np.sum(y == 1)),
                "accuracy": float(metrics.accuracy_score(y, predicted)),
                "balanced_accuracy": balanced_accuracy(p, y),
                # Per gender: an emotion can fail one gender only (men's raised pitch when angry).
                "male_recall": float(np.mean(predicted[y == 0] == 0)) if np.any(y == 0) else None,
                "female_recall": float(np.mean(predicted[y == 1] == 1)) if np.any(y == 1) else None,
            }
    return out


def evaluate_predictions(pred: SplitPredictions, clips: ClipPredictions | None = None) -> dict:
    """All metrics of one split: block level, clip level, and clip level by group.

    Args:
      pred: per-block predictions.
      clips: ``clip_level(pred)`` when the caller already has it.
    """
    clips = clip_level(pred) if clips is None else clips
    return {
        "block": binary_metrics(pred.p_female, pred.labels),
        "clip": binary_metrics(clips.p_female, clips.labels),
        "speakers": int(len(set(pred.speaker_ids))),
        "by_group": group_metrics(clips),
    }


def accuracy_summary(pred: SplitPredictions) -> dict[str, float | int]:
    """Block accuracy (the seed's measure), clip accuracy and balanced clip accuracy."""
    clips = clip_level(pred)
    block, clip = binary_metrics(pred.p_female, pred.labels), binary_metrics(clips.p_female, clips.labels)
    return {
        "blocks": block["count"],
        "clips": clip["count"],
        "block_accuracy": block["accuracy"],
        "clip_accuracy": clip["accuracy"],
        "balanced_clip_accuracy": clip["balanced_accuracy"],
    }
