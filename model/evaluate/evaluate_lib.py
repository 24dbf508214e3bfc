"""Evaluation of a trained run: metrics, JSON report and plots."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from model.evaluate import evaluation, plots
from model.train import loading
from pipeline import attributes, features
from pipeline.metadata import Normalizer, check_compatible, read_metadata

EVAL_DIRNAME = "eval"


def evaluate(model_dir: str, data_dir: str, split: str, batch_size: int = 256,
             attribute_tsvs: tuple[str, ...] = ()) -> dict:
    """Evaluates ``model_dir``'s final weights on ``split`` of ``data_dir``.

    Results are broken down by locale, age, accent, and by every attribute
    (emotion, ...) of an attribute TSV found beside the data's sources or
    named in ``attribute_tsvs`` (see ``pipeline.attributes``).

    Returns:
      The report written to ``<model_dir>/eval/<split>.json`` (with a
      ``files`` entry listing the JSON and the plots).

    Raises:
      DataMismatchError: the data has other features than the model.
      ValueError: the split is empty.
      FileNotFoundError: the model or data directory is incomplete.
      AttributeTableError: an attribute TSV without a ``path`` column.
    """
    model, feature_set, config = loading.load_block_model(model_dir)
    metadata = read_metadata(data_dir)
    check_compatible(metadata, feature_set, data_dir)
    if metadata.blocks(split) == 0:
        raise ValueError(f"{data_dir}: the {split} split is empty (0 blocks in {features.METADATA_FILENAME})")
    normalizer = Normalizer.from_metadata(metadata)
    predictions = evaluation.predict_split(model, data_dir, split, feature_set, normalizer, batch_size)
    clips = evaluation.clip_level(predictions)
    table = attributes.load_attributes(metadata.sources, attribute_tsvs)
    for name, values in attributes.attribute_columns(table, clips.clip_ids).items():
        clips.groups.setdefault(name, np.array(values))  # the job's own groups (locale, age, accent) win
    report = {"model_dir": model_dir, "data_dir": data_dir, "split": split, "model": config["model"],
              **evaluation.evaluate_predictions(predictions, clips)}

    out_dir = os.path.join(model_dir, EVAL_DIRNAME)
    tf.io.gfile.makedirs(out_dir)
    files = {name: os.path.join(out_dir, f"{split}_{name}.png") for name in ("confusion", "roc", "by_group")}
    plots.plot_confusion(report["clip"]["confusion"], features.GENDER_NAMES, files["confusion"],
                         title=f"{config['model']} on {split}: clips")
    plots.plot_roc({
        "blocks": (*evaluation.roc_curve(predictions.p_female, predictions.labels), report["block"]["roc_auc"]),
        "clips": (*evaluation.roc_curve(clips.p_female, clips.labels), report["clip"]["roc_auc"]),
    }, files["roc"], title=f"{config['model']} on {split}")
    plots.plot_group_accuracy(report["by_group"], files["by_group"], evaluation.MIN_GROUP_CLIPS,
                              title=f"{config['model']} on {split}")
    files["report"] = os.path.join(out_dir, f"{split}.json")
    report["files"] = files
    with tf.io.gfile.GFile(files["report"], "w") as f:
        json.dump(report, f, indent=1)
    return report


def format_summary(report: dict) -> str:
    """A readable summary of ``evaluate``'s report."""
    lines = [f"{report['model']} on {report['split']} ({report['data_dir']}): "
             f"{report['clip']['count']} clips, {report['block']['count']} blocks, {report['speakers']} speakers"]
    header = f"{'level':<8}{'accuracy':>10}{'balanced':>10}{'ROC AUC':>9}{'male P/R':>14}{'female P/R':>14}"
    lines.append(header)
    for level in ("block", "clip"):
        m = report[level]
        lines.append(f"{level:<8}{m['accuracy']:>10.4f}{m['balanced_accuracy']:>10.4f}{m['roc_auc']:>9.4f}"
                     f"{m['male']['precision']:>8.3f}/{m['male']['recall']:.3f}"
                     f"{m['female']['precision']:>8.3f}/{m['female']['recall']:.3f}")
    (mm, mf), (fm, ff) = report["clip"]["confusion"]
    lines.append(f"clip confusion (rows true, cols predicted male/female): male {mm}/{mf}, female {fm}/{ff}")
    for group, values in report["by_group"].items():
        shown = sorted(((v, m) for v, m in values.items() if m["clips"] >= evaluation.MIN_GROUP_CLIPS),
                       key=lambda item: item[1]["balanced_accuracy"])
        if shown:
            worst = ", ".join(f"{v} {m['balanced_accuracy']:.3f} (n={m['clips']})" for v, m in shown[:5])
            lines.append(f"worst {group}s (>= {evaluation.MIN_GROUP_CLIPS} clips): {worst}")
    for group in sorted(report["by_group"].keys() - {"locale", "age", "accent"}):  # attributes: all cells, by gender
        lines.append(f"by {group}: {'clips':>6}{'balanced':>10}{'male recall':>13}{'female recall':>15}")
        for value, m in sorted(report["by_group"][group].items()):
            recall = [f"{m[k]:.3f} ({m[g]})" if m[k] is not None else f"- ({m[g]})"
                      for k, g in (("male_recall", "male"), ("female_recall", "female"))]
            lines.append(f"  {value:<14}{m['clips']:>6}{m['balanced_accuracy']:>10.4f}{recall[0]:>13}{recall[1]:>15}")
    lines.append(f"wrote {report['files']['report']} and plots next to it")
    return "\n".join(lines)
