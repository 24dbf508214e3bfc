"""Block- and clip-level predictions and accuracy on a preprocessed split."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import tf_keras as keras

from pipeline import features, inputs
from pipeline.metadata import Normalizer


@dataclasses.dataclass
class SplitPredictions:
    """Per-block predictions of one split, with what identifies each block."""

    p_female: np.ndarray  # float32 [blocks]
    labels: np.ndarray  # int [blocks]
    clip_ids: np.ndarray  # str [blocks]
    speaker_ids: np.ndarray  # str [blocks]


def predict_split(model: keras.Model, data_dir: str, split: str, feature_set: features.FeatureSet,
                  normalizer: Normalizer, batch_size: int = 256) -> SplitPredictions:
    """Runs ``model`` over every block of ``split`` once, in file order."""
    config = inputs.InputConfig(data_dir, split, batch_size, deterministic=True, with_info=True)
    p, y, clips, speakers = [], [], [], []
    for blocks, labels, info in inputs.make_dataset(config, feature_set, normalizer):
        p.append(model(blocks, training=False).numpy()[:, 0])
        y.append(labels.numpy().astype(int))
        clips.append(info[features.CLIP_ID_KEY].numpy().astype(str))
        speakers.append(info[features.SPEAKER_ID_KEY].numpy().astype(str))
    return SplitPredictions(np.concatenate(p), np.concatenate(y), np.concatenate(clips), np.concatenate(speakers))


def clip_level(pred: SplitPredictions) -> tuple[np.ndarray, np.ndarray]:
    """Mean block probability and label of each clip: (p_female [clips], labels [clips])."""
    by_clip: dict[str, list[int]] = collections.defaultdict(list)
    for i, clip in enumerate(pred.clip_ids):
        by_clip[clip].append(i)
    order = sorted(by_clip)
    p = np.array([pred.p_female[by_clip[c]].mean() for c in order])
    y = np.array([pred.labels[by_clip[c][0]] for c in order])
    return p, y


def balanced_accuracy(p: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of male and female recall."""
    predicted = (p >= threshold).astype(int)
    recalls = [float(np.mean(predicted[y == label] == label)) for label in (features.MALE, features.FEMALE)
               if np.any(y == label)]
    return float(np.mean(recalls)) if recalls else float("nan")


def accuracy_summary(pred: SplitPredictions) -> dict[str, float | int]:
    """Block accuracy (the seed's measure), clip accuracy and balanced clip accuracy."""
    clip_p, clip_y = clip_level(pred)
    return {
        "blocks": int(pred.labels.size),
        "clips": int(clip_y.size),
        "block_accuracy": float(np.mean((pred.p_female >= 0.5) == pred.labels)),
        "clip_accuracy": float(np.mean((clip_p >= 0.5) == clip_y)),
        "balanced_clip_accuracy": balanced_accuracy(clip_p, clip_y),
    }
