r"""Why the default ``cnn`` looks the way it does: variants trained side by side.

Each variant is trained with the same preset (configs/cnn.flags values, via
``model.train_lib``) on the same preprocessed log-mel data, and evaluated on
the speaker-disjoint validation split. Prints parameters, multiply-adds per
block, CPU training time, block and clip accuracy; the last line is JSON.

Needs a log-mel output of ``beam_jobs.preprocess`` on real data, e.g.
  python -m beam_jobs.preprocess --flagfile=configs/preprocess.flags \
      --cv_dir=../shared/data/commonvoice-6.1-sample --cv_dir=../shared/data/duke-alphanumeric \
      --cv_dir=../shared/data/librispeech-sample --output_dir=/tmp/real_logmel
  python benchmarks/cnn_design.py --data_dir=/tmp/real_logmel --work_dir=/tmp/cnn_design
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_keras as keras  # noqa: E402
from absl import logging  # noqa: E402
from tf_keras import layers  # noqa: E402

from model import config as config_lib  # noqa: E402
from model import models, train_lib  # noqa: E402
from pipeline import features  # noqa: E402
from pipeline.augment import AugmentConfig  # noqa: E402


def cnn_global_pool(block_shape, width=16):
    """The default cnn, but averaging frequency away too (global average pooling)."""
    model = models.cnn(block_shape, width=width)
    x = model.get_layer("stage4_relu").output
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(model.input, out, name="cnn_global_pool")


VARIANTS = {
    "cnn": (models.cnn, True),
    "cnn_global_pool": (cnn_global_pool, True),
    "cnn_width32": (functools.partial(models.cnn, width=32), True),
    "cnn_width8": (functools.partial(models.cnn, width=8), True),
    "cnn_no_augment": (models.cnn, False),
}


def multiply_adds(model) -> int:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)

    rows = []
    for name in args.variants.split(","):
        builder, augment = VARIANTS[name]
        models.MODELS[name] = builder  # registering a model is all --model needs
        config = config_lib.TrainConfig(
            data_dir=args.data_dir, model_dir=os.path.join(args.work_dir, name), model=name, epochs=args.epochs,
            batch_size=64, learning_rate=0.002, lr_schedule="cosine", warmup_epochs=1,
            augment=AugmentConfig() if augment else None, strategy="cpu", export=False)
        start = time.perf_counter()
        result = train_lib.train(config)
        seconds = time.perf_counter() - start
        model = models.build_model(name, features.LOG_MEL.block_shape)
        rows.append({"variant": name, "params": model.count_params(), "mmac_per_block": multiply_adds(model) / 1e6,
                     "train_s": round(seconds, 1), **result.validation,
                     "val_auc_last": result.history["val_auc"][-1]})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'variant':<18}{'params':>9}{'MMAC':>8}{'train s':>9}{'block acc':>10}{'clip acc':>10}{'bal clip':>10}")
    for r in rows:
        print(f"{r['variant']:<18}{r['params']:>9}{r['mmac_per_block']:>8.1f}{r['train_s']:>9.0f}"
              f"{r['block_accuracy']:>10.4f}{r['clip_accuracy']:>10.4f}{r['balanced_clip_accuracy']:>10.4f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
