"""PNG plots of an evaluation: confusion matrix, ROC curves, accuracy by group (training curves: ``model.train.curves``).

The confusion matrix and the ROC curves are scikit-learn's displays (``ConfusionMatrixDisplay``,
``RocCurveDisplay``), drawn from the numbers ``model.evaluate.evaluation`` reports.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # imports pyplot only when drawing

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_confusion(confusion: list[list[int]], labels: tuple[str, ...], path: str,
                   title: str = "") -> ConfusionMatrixDisplay:
    """A confusion matrix: rows true, columns predicted; counts and row percentages.

    Drawn by ``sklearn.metrics.ConfusionMatrixDisplay`` from the counts; the cells are then shaded by their
    share of the row (a row's recall) and each text gets the percentage under the count, so an unbalanced
    split still reads at a glance.

    Args:
      confusion: ``[[true 0 -> 0, true 0 -> 1], ...]`` counts (``evaluation.binary_metrics``'s ``confusion``).
      labels: class names in label order (``features.GENDER_NAMES``).
      path: PNG file to write.
      title: axes title.

    Returns:
      The display (its ``confusion_matrix``, ``im_`` and ``text_`` are what was drawn).
    """
    matrix = np.asarray(confusion, dtype=int)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    display = ConfusionMatrixDisplay(matrix, display_labels=list(labels)).plot(
        ax=ax, cmap="Blues", colorbar=False, values_format="d")
    display.im_.set_data(rows)
    display.im_.set_clim(0, 1)
    for (i, j), text in np.ndenumerate(display.text_):
        text.set_text(f"{matrix[i, j]}\n{rows[i, j]:.1%}")
        text.set_color("white" if rows[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return display


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: str,
             title: str = "") -> list[RocCurveDisplay]:
    """ROC curves on one axes, one ``sklearn.metrics.RocCurveDisplay`` per level, and the chance diagonal.

    Args:
      curves: level name -> ``(fpr, tpr, auc)``, the curve from ``evaluation.roc_curve`` and its AUC.
      path: PNG file to write.
      title: axes title.

    Returns:
      The displays in ``curves``' order (each ``line_`` is the drawn curve).
    """
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    displays = [RocCurveDisplay(fpr=fpr, tpr=tpr, roc_auc=auc, name=name).plot(
                    ax=ax, curve_kwargs={"label": f"{name} (AUC {auc:.3f})"})
                for name, (fpr, tpr, auc) in curves.items()]
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    # The display's square axes end at 1.01, where a curve along an edge hides under the frame: keep the
    # margins and aspect these plots always had.
    ax.set(xlim=(-0.05, 1.05), ylim=(-0.05, 1.05), aspect="auto")
    ax.set_xlabel("false female rate (males called female)")
    ax.set_ylabel("true female rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return displays


def plot_group_accuracy(by_group: dict[str, dict[str, dict]], path: str, min_clips: int, title: str = "") -> None:
    """Balanced clip accuracy per value of each group (groups with >= min_clips clips), with counts."""
    groups = {g: {v: m for v, m in values.items() if m["clips"] >= min_clips} for g, values in by_group.items()}
    groups = {g: v for g, v in groups.items() if v}
    if not groups:
        groups = {"(no group with enough clips)": {}}
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.2 + 0.25 * sum(len(v) for v in groups.values())),
                             squeeze=False)
    for ax, (group, values) in zip(axes[:, 0], groups.items(), strict=True):
        names = sorted(values, key=lambda v: values[v]["balanced_accuracy"])
        accuracy = [values[v]["balanced_accuracy"] for v in names]
        ax.barh(range(len(names)), accuracy, color="tab:blue")
        ax.set_yticks(range(len(names)), [f"{v} (n={values[v]['clips']})" for v in names], fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_title(f"balanced clip accuracy by {group}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
