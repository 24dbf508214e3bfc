"""Block- and clip-level predictions and metrics on a preprocessed split.

Block accuracy is the seed article's measure; clip accuracy (the mean of a
clip's block probabilities) is what a user of ``predict`` gets. Metrics are
also broken down by locale, age and accent: where does the model fail?
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import tf_keras as keras

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
    config = inputs.InputConfig(data_dir, split, batch_size, deterministic=True, with_info=True)
    columns = collections.defaultdict(list)
    for blocks, labels, info in inputs.make_dataset(config, feature_set, normalizer):
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
    groups: dict[str, np.ndarray]  # locale / age / accent per clip


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


def roc_curve(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates ("female" positive) at every threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-p, kind="stable")
    y_sorted = y[order]
    tps = np.concatenate([[0], np.cumsum(y_sorted)])
    fps = np.concatenate([[0], np.cumsum(1 - y_sorted)])
    return fps / max(fps[-1], 1), tps / max(tps[-1], 1)


def roc_auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (probability a female clip scores above a male one; ties count half)."""
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = _average_ranks(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


def balanced_accuracy(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of male and female recall (over the genders present)."""
    predicted = (p >= threshold).astype(int)
    recalls = [float(np.mean(predicted[y == label] == label)) for label in (features.MALE, features.FEMALE)
               if np.any(y == label)]
    return float(np.mean(recalls)) if recalls else float("nan")


def binary_metrics(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, per-gender precision and recall, ROC AUC, confusion matrix.

    The confusion matrix is ``[[male->male, male->female], [female->male, female->female]]``
    (rows: true gender, columns: predicted).
    """
    predicted = (p >= threshold).astype(int)
    confusion = [[int(np.sum((y == t) & (predicted == q))) for q in (0, 1)] for t in (0, 1)]
    per_gender = {}
    for label, name in enumerate(features.GENDER_NAMES):
        tp = confusion[label][label]
        per_gender[name] = {
            "precision": tp / max(1, sum(confusion[t][label] for t in (0, 1))),
            "recall": tp / max(1, sum(confusion[label])),
            "count": int(sum(confusion[label])),
        }
    return {
        "count": int(len(y)),
        "accuracy": float(np.mean(predicted == y)) if len(y) else float("nan"),
        "balanced_accuracy": balanced_accuracy(p, y, threshold),
        "roc_auc": roc_auc(p, y),
        "confusion": confusion,
        **per_gender,
    }


def group_metrics(clips: ClipPredictions) -> dict[str, dict[str, dict]]:
    """Clip accuracy and balanced accuracy per locale, age and accent value."""
    out: dict[str, dict[str, dict]] = {}
    for group, values in clips.groups.items():
        out[group] = {}
        for value in sorted(set(values)):
            mask = values == value
            p, y = clips.p_female[mask], clips.labels[mask]
            out[group][str(value)] = {
                "clips": int(mask.sum()),
                "male": int(np.sum(y == 0)),
                "female": int(np.sum(y == 1)),
                "accuracy": float(np.mean((p >= 0.5) == y)),
                "balanced_accuracy": balanced_accuracy(p, y),
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
