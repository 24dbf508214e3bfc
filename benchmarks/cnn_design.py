r"""Why the default ``cnn`` looks the way it does: variants trained side by side.

Each variant is trained with the same preset (``configs/cnn.flags``, read
through ``model.train.config.config_from_flagfile``, so the variants get exactly
what ``python -m model.train --flagfile=configs/cnn.flags`` would) on the same
preprocessed log-mel data, on the CPU and without export, and evaluated on the
speaker-disjoint validation split. Prints parameters, multiply-adds per block,
training time, block and clip accuracy; the last line is JSON.

Needs a log-mel output of ``beam_jobs.preprocess`` on real data, e.g.
  python -m beam_jobs.preprocess --flagfile=configs/preprocess.flags \
      --cv_dir=../shared/data/commonvoice-6.1-sample --cv_dir=../shared/data/duke-alphanumeric \
      --cv_dir=../shared/data/librispeech-sample --output_dir=/tmp/real_logmel
  python -m benchmarks.cnn_design --data_dir=/tmp/real_logmel --work_dir=/tmp/cnn_design
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Iterator

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported

import tf_keras as keras
from absl import app, flags, logging
from tf_keras import layers

from benchmarks import common
from model import workflow
from model.train import config as config_lib
from model.train import models
from pipeline import features

FLAGS = flags.FLAGS
PRESET = os.path.join(common.REPO, "configs", "cnn.flags")


def cnn_global_pool(block_shape: tuple[int, int], width: int = 16) -> keras.Model:
    """The default cnn, but averaging frequency away too (global average pooling)."""
    model = models.cnn(block_shape, width=width)
    x = model.get_layer("stage4_relu").output
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(model.input, out, name="cnn_global_pool")


# name -> (builder, whether the preset's augmentation is used)
VARIANTS: dict[str, tuple[Callable[[tuple[int, int]], keras.Model], bool]] = {
    "cnn": (models.cnn, True),
    "cnn_global_pool": (cnn_global_pool, True),
    "cnn_width32": (functools.partial(models.cnn, width=32), True),
    "cnn_width8": (functools.partial(models.cnn, width=8), True),
    "cnn_no_augment": (models.cnn, False),
}


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_string("data_dir", None, "A log-mel output of beam_jobs.preprocess.", required=True)
    flags.DEFINE_string("work_dir", None, "Each variant's model_dir is a directory here.", required=True)
    flags.DEFINE_string("preset", PRESET, "The training preset every variant starts from.")
    flags.DEFINE_integer("epochs", None, "Epochs per variant (default: the preset's).")
    flags.DEFINE_list("variants", list(VARIANTS), f"Variants to train, of {sorted(VARIANTS)}.")


@contextlib.contextmanager
def registered(name: str, builder: Callable[[tuple[int, int]], keras.Model]) -> Iterator[None]:
    """``models.MODELS`` is a copy with ``name`` added while the block runs, and the original again after.

    ``workflow.run`` (``train_lib.train``) builds ``config.model`` by name from the registry, so a
    variant must be in it during its run; the project's registry itself is
    never changed.
    """
    original = models.MODELS
    models.MODELS = {**original, name: builder}
    try:
        yield
    finally:
        models.MODELS = original


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass of one block (conv and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output_shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input_shape[-1] * c_out
        elif isinstance(layer, layers.Conv1D):
            _, t, c_out = layer.output_shape
            total += t * layer.kernel_size[0] * layer.input_shape[-1] * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input_shape[-1] * layer.units
    return total


def variant_config(name: str, data_dir: str, work_dir: str, preset: str = PRESET,
                   epochs: int | None = None) -> config_lib.TrainConfig:
    """The preset's training config for one variant: on the CPU, without export, in ``work_dir/name``.

    Args:
      name: a key of ``VARIANTS``.
      data_dir: a log-mel output of ``beam_jobs.preprocess``.
      work_dir: the variant's model_dir is ``work_dir/name``.
      preset: a ``model.train`` flagfile.
      epochs: overrides the preset's epochs when given.

    Returns:
      The config; the preset's augmentation, or none for a variant that trains without it.
    """
    _, augment = VARIANTS[name]
    overrides = {"data_dir": data_dir, "model_dir": os.path.join(work_dir, name), "model": name, "strategy": "cpu",
                 "export": False}
    if epochs:
        overrides["epochs"] = epochs
    if not augment:
        overrides["augment"] = None
    return config_lib.config_from_flagfile(preset, **overrides)


def train_variant(config: config_lib.TrainConfig) -> dict:
    """Trains the variant ``config.model``; its size, training time and validation figures."""
    builder, _ = VARIANTS[config.model]
    with registered(config.model, builder):
        start = time.perf_counter()
        result = workflow.run(config)
        seconds = time.perf_counter() - start
        model = models.build_model(config.model, features.get_feature_set(config.features).block_shape)
    return {"variant": config.model, "params": model.count_params(), "mmac_per_block": multiply_adds(model) / 1e6,
            "train_s": round(seconds, 1), **result.validation, "val_auc_last": result.history["val_auc"][-1]}


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    unknown = sorted(set(FLAGS.variants) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"unknown variant(s) {unknown}; known: {sorted(VARIANTS)}")
    rows = []
    for name in FLAGS.variants:
        rows.append(train_variant(variant_config(name, FLAGS.data_dir, FLAGS.work_dir, FLAGS.preset, FLAGS.epochs)))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'variant':<18}{'params':>9}{'MMAC':>8}{'train s':>9}{'block acc':>10}{'clip acc':>10}{'bal clip':>10}")
    for r in rows:
        print(f"{r['variant']:<18}{r['params']:>9}{r['mmac_per_block']:>8.1f}{r['train_s']:>9.0f}"
              f"{r['block_accuracy']:>10.4f}{r['clip_accuracy']:>10.4f}{r['balanced_clip_accuracy']:>10.4f}")
    common.print_json(rows)


if __name__ == "__main__":
    define_flags()
    app.run(main)
