r"""Issue 21's fusion: the shipped ``cnn`` and inaSpeechSegmenter 0.6.8's gender CNN (MIT), as one export.

``models.cnn_ina_fusion`` with the ``cnn`` branch's weights taken from an
export of ours (by default the shipped model, trained as WORKSPACE.md's "The
shipped model" says) and ina's from the pinned wheel, both fixed: per 0.96 s
block, the mean of the ``cnn``'s logit and the mean logit of ina's two
68-frame patches of the block. The export is a ``log_mel_ina`` one: SavedModel
and LiteRT compute both front ends from the waveform, so ``predict
--model_dir``, ``--segments``, ``label_clips`` and ``evaluate`` run it
unchanged. Its normalizer is the ``cnn``'s training statistics on the log_mel
bins and the identity on ina's (ina standardises each patch itself). Then fit
its calibration on the same training data's validation speakers with
``voicegender calibrate``. Measured against the shipped model in WORKSPACE.md
("Decisions"): better on emotional speech, worse under telephone and noise,
so not the default.

Usage:
  pip download --no-deps inaSpeechSegmenter==0.6.8 -d /tmp/inawheel
  python -m model.export.fused --wheel=/tmp/inawheel/inaSpeechSegmenter-0.6.8-py3-none-any.whl \
      --output_dir=/tmp/fused_export
  python -m model.calibrate --model_dir=/tmp/fused_export --data_dir=<the cnn's training data>
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np

from pipeline import features

# The cnn's run files an export of ours carries beside it (the shipped model's card cites them).
RUN_FILES = (features.TRAINING_METADATA_FILENAME, "training_flags.txt")


def cnn_from_export(export_dir: str):
    """The float32 ``cnn`` Keras model of an export of ours, its weights read from the SavedModel by name.

    Raises:
      ValueError: the export is not of a ``cnn`` on ``log_mel`` (a weight of the model is missing there).
    """
    from model.predict.export_format import load_export_info
    from model.train import warm_start

    info, _ = load_export_info(export_dir)
    if info.get("feature_set", {}).get("name") != features.LOG_MEL.name or info.get("model") != "cnn":
        raise ValueError(f"{export_dir}: not an export of a `cnn` on log_mel (model {info.get('model')!r}, "
                         f"features {info.get('feature_set', {}).get('name')!r})")
    return warm_start.cnn_from_export(export_dir)


def fused_normalizer(export_dir: str):
    """The cnn's training statistics (its ``training_data_metadata.json``) on log_mel's bins, identity on ina's."""
    from pipeline.metadata import Metadata, Normalizer

    path = os.path.join(export_dir, RUN_FILES[0])
    with open(path) as f:
        cnn_stats = Normalizer.from_metadata(Metadata.from_dict(json.load(f), path))
    ina_bins = features.LOG_MEL_INA.num_bins - len(cnn_stats.mean)
    return Normalizer(np.concatenate([cnn_stats.mean, np.zeros(ina_bins, np.float32)]),
                      np.concatenate([cnn_stats.std, np.ones(ina_bins, np.float32)]))


def build(wheel: str, cnn_export: str, ina_patches: int | None = None):
    """The fused Keras model (weights fixed; ``ina_patches`` per block, default the model's) and its normalizer."""
    from model.train import ina, models

    model = models.cnn_ina_fusion(features.LOG_MEL_INA.block_shape, ina.load_ina_cnn(wheel),
                                  cnn_branch=cnn_from_export(cnn_export),
                                  ina_patches=ina_patches or models.INA_PATCHES_PER_BLOCK)
    return model, fused_normalizer(cnn_export)


def export(wheel: str, cnn_export: str, output_dir: str, ina_patches: int | None = None) -> str:
    """Writes the fused export (SavedModel + LiteRT + voicegender.json + the MIT notice + the cnn's run files).

    Returns:
      ``output_dir`` (replaced when it exists; ``cnn_export`` may not be it).
    """
    from model.export import serving
    from model.train import ina, models

    if os.path.abspath(cnn_export) == os.path.abspath(output_dir):
        raise ValueError("--output_dir must differ from --cnn_export (the export is replaced)")
    ina_patches = ina_patches or models.INA_PATCHES_PER_BLOCK
    model, normalizer = build(wheel, cnn_export, ina_patches)
    notice = ina.license_text(wheel)
    serving.export_saved_model(model, features.LOG_MEL_INA, normalizer, output_dir,
                               extra_metadata={"model": "cnn_ina_fusion", "attribution": ina.ATTRIBUTION,
                                               "cnn_from": os.path.basename(os.path.abspath(cnn_export)),
                                               "ina_patches_per_block": ina_patches})
    ina.write_license(output_dir, notice)
    for name in RUN_FILES:
        if os.path.isfile(os.path.join(cnn_export, name)):
            shutil.copy(os.path.join(cnn_export, name), os.path.join(output_dir, name))
    return output_dir


def main(argv: list[str]) -> int:
    from absl import flags

    del argv
    try:
        path = export(flags.FLAGS.wheel, flags.FLAGS.cnn_export, flags.FLAGS.output_dir, flags.FLAGS.ina_patches)
    except (ValueError, FileNotFoundError) as e:  # a wrong wheel or export (ModelDirError too): one line
        print(f"model.export.fused: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    from pipeline import console

    console.silence_tensorflow_startup()  # before TensorFlow is imported: a user sees our lines only

    from absl import app, flags

    from model.predict.export_format import PRETRAINED_DIR

    flags.DEFINE_string("wheel", None, "The inaSpeechSegmenter 0.6.8 wheel (pip download --no-deps).")
    flags.DEFINE_string("cnn_export", PRETRAINED_DIR, "An export of a `cnn` on log_mel (its run files beside it).")
    flags.DEFINE_string("output_dir", None, "Where the export is written (replaced).")
    flags.DEFINE_integer("ina_patches", None, "ina patches per 0.96 s block (1: one, centred; default the model's, "
                         "2: what its CNN costs).")
    flags.mark_flags_as_required(["wheel", "output_dir"])
    app.run(main)
