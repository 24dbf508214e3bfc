"""The PNG plots: files written, and the drawn artists carry the numbers `model.evaluate.evaluation` reports."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import image

from model.evaluate import evaluation, plots
from model.train import curves
from pipeline import features

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _predictions(seed: int = 3, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Fixed female probabilities and labels: 3:1 more females, informative, with ties at 0 and 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.75).astype(int)
    p = (1 / (1 + np.exp(-rng.normal(2.0 * y - 1.0, 1.2)))).astype(np.float32)
    p[rng.random(n) < 0.1] = 1.0
    p[rng.random(n) < 0.05] = 0.0
    return p, y


# --- legacy reference, kept to prove the sklearn displays draw the same PNGs ------------------------------------
# The hand-drawn plots model/plots.py had before it used scikit-learn's displays, copied unchanged.

def _legacy_plot_confusion(confusion, labels, path, title=""):
    matrix = np.asarray(confusion, dtype=float)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(matrix[i, j])}\n{rows[i, j]:.1%}", ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legacy_plot_roc(curves, path, title=""):
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false female rate (males called female)")
    ax.set_ylabel("true female rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _assert_png(path, width: int, height: int) -> None:
    """A PNG of figsize x 110 dpi pixels (matplotlib truncates), not blank."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0  # something was drawn


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_confusion_plot_shows_the_reported_counts_and_row_shares(tmp_path):
    p, y = _predictions()
    confusion = evaluation.binary_metrics(p, y)["confusion"]
    path = tmp_path / "validation_confusion.png"
    display = plots.plot_confusion(confusion, features.GENDER_NAMES, str(path), title="cnn on validation: clips")
    _assert_png(path, 418, 374)

    np.testing.assert_array_equal(display.confusion_matrix, confusion)
    matrix = np.asarray(confusion)
    shares = matrix / matrix.sum(axis=1, keepdims=True)
    for (i, j), text in np.ndenumerate(display.text_):
        count, share = text.get_text().split("\n")
        assert int(count) == confusion[i][j]
        assert share == f"{shares[i, j]:.1%}"
        assert text.get_color() == ("white" if shares[i, j] > 0.5 else "black")
    np.testing.assert_allclose(display.im_.get_array(), shares)  # shaded by recall, on a fixed 0..1 scale
    assert display.im_.get_clim() == (0, 1)
    ax = display.ax_
    assert [t.get_text() for t in ax.get_xticklabels()] == list(features.GENDER_NAMES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(features.GENDER_NAMES)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("predicted", "true", "cnn on validation: clips")


def test_confusion_plot_of_a_gender_absent_from_the_split(tmp_path):
    display = plots.plot_confusion([[0, 0], [3, 9]], features.GENDER_NAMES, str(tmp_path / "c.png"))
    assert [t.get_text() for t in display.text_.ravel()] == ["0\n0.0%", "0\n0.0%", "3\n25.0%", "9\n75.0%"]


def test_roc_plot_draws_evaluations_curves_with_their_auc(tmp_path):
    p, y = _predictions()
    clip_p, clip_y = _predictions(seed=4, n=60)
    curves = {"blocks": (*evaluation.roc_curve(p, y), evaluation.roc_auc(p, y)),
              "clips": (*evaluation.roc_curve(clip_p, clip_y), evaluation.roc_auc(clip_p, clip_y))}
    path = tmp_path / "validation_roc.png"
    displays = plots.plot_roc(curves, str(path), title="cnn on validation")
    _assert_png(path, 462, 440)

    assert len(displays) == 2
    for display, (name, (fpr, tpr, auc)) in zip(displays, curves.items(), strict=True):
        np.testing.assert_array_equal(display.line_.get_xdata(), fpr)
        np.testing.assert_array_equal(display.line_.get_ydata(), tpr)
        assert display.line_.get_label() == f"{name} (AUC {auc:.3f})"
        # The legend's AUC is the area under the line drawn.
        assert np.trapezoid(display.line_.get_ydata(), display.line_.get_xdata()) == pytest.approx(auc, abs=1e-12)
    ax = displays[0].ax_
    assert displays[1].ax_ is ax
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"blocks (AUC {curves['blocks'][2]:.3f})", f"clips (AUC {curves['clips'][2]:.3f})"]
    assert ax.get_xlabel() == "false female rate (males called female)"
    assert (ax.get_ylabel(), ax.get_title()) == ("true female rate", "cnn on validation")
    assert ax.get_xlim() == ax.get_ylim() == (-0.05, 1.05)  # the old margins: edge-hugging curves stay visible
    chance = ax.get_lines()[-1]
    assert (list(chance.get_xdata()), list(chance.get_ydata())) == ([0, 1], [0, 1])


def test_history_and_group_plots_write_pngs(tmp_path):
    history = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.72, 0.6, 0.55], "accuracy": [0.5, 0.7, 0.8],
               "learning_rate": [1e-3, 1e-3, 5e-4]}
    curves.plot_history(history, str(tmp_path / "curves.png"), title="cnn")
    _assert_png(tmp_path / "curves.png", 1386, 374)
    by_group = {"locale": {"en": {"clips": 12, "balanced_accuracy": 0.9}, "de": {"clips": 2, "balanced_accuracy": 0.1}}}
    plots.plot_group_accuracy(by_group, str(tmp_path / "groups.png"), min_clips=5)
    _assert_png(tmp_path / "groups.png", 880, 269)


@pytest.mark.parametrize("seed", [3, 8])
def test_sklearn_displays_draw_the_same_pixels_as_the_old_plots(seed, tmp_path):
    p, y = _predictions(seed)
    clip_p, clip_y = _predictions(seed + 1, n=50)
    confusion = evaluation.binary_metrics(p, y)["confusion"]
    curves = {"blocks": (*evaluation.roc_curve(p, y), evaluation.roc_auc(p, y)),
              "clips": (*evaluation.roc_curve(clip_p, clip_y), evaluation.roc_auc(clip_p, clip_y))}
    for draw, legacy, args in ((plots.plot_confusion, _legacy_plot_confusion, (confusion, features.GENDER_NAMES)),
                               (plots.plot_roc, _legacy_plot_roc, (curves,))):
        draw(*args, str(tmp_path / "new.png"), title="cnn on validation")
        legacy(*args, str(tmp_path / "old.png"), title="cnn on validation")
        np.testing.assert_array_equal(image.imread(tmp_path / "new.png"), image.imread(tmp_path / "old.png"))
