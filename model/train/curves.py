"""The training curves PNG a run draws after every epoch (loss, accuracy, learning rate)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: dict[str, list[float]], path: str, title: str = "") -> None:
    """Draws loss, accuracy and learning rate per epoch, train next to validation.

    Args:
      history: metric name -> one value per epoch (Keras ``History.history``).
      path: PNG file to write.
      title: figure title (e.g. the model name).
    """
    panels = [name for name in ("loss", "accuracy", "auc", "learning_rate") if name in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", ms=3, label="train")
        if f"val_{name}" in history:
            ax.plot(range(1, len(history[f"val_{name}"]) + 1), history[f"val_{name}"], marker="o", ms=3,
                    label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name.replace("_", " "))
        ax.grid(alpha=0.3)
        if name != "learning_rate":
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
