"""Trains a gender classifier on preprocessed TFRecords.

    python -m model.train --flagfile=configs/local.flags
    python -m model.train --data_dir=D --model_dir=M --model=cnn --epochs=20

A flagfile may include another (``--flagfile=configs/base.flags`` inside it);
later flags override earlier ones. Run it again with the same flags after an
interruption and it resumes from its last checkpoint.
"""

from __future__ import annotations

import sys

from pipeline import console  # noqa: E402

if __name__ == "__main__":
    # Before TensorFlow is imported, here and in every worker process.
    console.silence_tensorflow_startup()

from absl import app, flags, logging  # noqa: E402

from model import config as config_lib  # noqa: E402
from model import models  # noqa: E402
from pipeline import features  # noqa: E402
from pipeline.augment import AugmentConfig  # noqa: E402

_DEFAULTS = config_lib.TrainConfig(data_dir="", model_dir="")
_AUG = AugmentConfig()

flags.DEFINE_string("data_dir", None, "Output directory of beam_jobs.preprocess (local or gs://).")
flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard logs, history, plots and export/ go here.")
flags.DEFINE_enum("model", models.DEFAULT_MODEL, sorted(models.MODELS), "Model architecture.")
flags.DEFINE_enum("features", features.DEFAULT_FEATURE_SET, sorted(features.FEATURE_SETS),
                  "Feature set the model expects; data with other features is refused.")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Passes over the training split.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Global batch size (split across replicas).")
flags.DEFINE_enum("optimizer", _DEFAULTS.optimizer, config_lib.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Peak learning rate.")
flags.DEFINE_enum("lr_schedule", _DEFAULTS.lr_schedule, config_lib.LR_SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_float("warmup_epochs", _DEFAULTS.warmup_epochs, "Linear warm-up epochs.")
flags.DEFINE_float("weight_decay", _DEFAULTS.weight_decay, "Decoupled weight decay (adamw).")
flags.DEFINE_bool("augment", True, "Training-time augmentation (gain and SpecAugment masks).")
flags.DEFINE_float("gain_db", _AUG.gain_db, "Random gain range in dB, +/- (0: off).")
flags.DEFINE_integer("time_masks", _AUG.time_masks, "SpecAugment time masks per block (0: off).")
flags.DEFINE_float("time_mask_fraction", _AUG.time_mask_fraction, "Longest time mask, fraction of frames.")
flags.DEFINE_integer("freq_masks", _AUG.freq_masks, "SpecAugment frequency masks per block (0: off).")
flags.DEFINE_float("freq_mask_fraction", _AUG.freq_mask_fraction, "Widest frequency mask, fraction of bins.")
flags.DEFINE_float("tilt_db", _AUG.tilt_db, "Random spectral tilt, +/- dB from lowest to highest bin (0: off).")
flags.DEFINE_float("noise_prob", _AUG.noise_prob, "Fraction of blocks given additive noise (0: off).")
flags.DEFINE_list("noise_snr_db", [str(v) for v in _AUG.noise_snr_db], "Lowest,highest SNR of that noise, dB.")
flags.DEFINE_float("lowpass_prob", _AUG.lowpass_prob, "Fraction of blocks band-limited below a cutoff (0: off).")
flags.DEFINE_list("lowpass_hz", [str(v) for v in _AUG.lowpass_hz], "Lowest,highest band-limit cutoff, Hz.")
flags.DEFINE_float("freq_warp", _AUG.freq_warp, "Frequency-axis scaling by 1 +/- this (pitch and formants; 0: off).")
flags.DEFINE_enum("strategy", _DEFAULTS.strategy, config_lib.STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", _DEFAULTS.tpu, "TPU name or grpc:// address (--strategy=tpu or auto).")
flags.DEFINE_enum("mixed_precision", _DEFAULTS.mixed_precision, config_lib.PRECISIONS,
                  "mixed_float16 on GPU, mixed_bfloat16 on TPU.")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of weights, shuffles and augmentation.")
flags.DEFINE_integer("steps_per_execution", _DEFAULTS.steps_per_execution, "Train steps per tf.function call.")
flags.DEFINE_integer("early_stopping_patience", _DEFAULTS.early_stopping_patience,
                     "Stop after this many epochs without validation-loss improvement (0: off).")
flags.DEFINE_integer("shuffle_buffer", _DEFAULTS.shuffle_buffer, "Examples in the shuffle buffer.")
flags.DEFINE_bool("deterministic", _DEFAULTS.deterministic, "Reproducible input order (slower).")
flags.DEFINE_bool("cache", _DEFAULTS.cache, "Cache decoded records in memory after the first epoch.")
flags.DEFINE_integer("backup_every_steps", _DEFAULTS.backup_every_steps,
                     "Fault-tolerance checkpoint every N steps (0: every epoch).")
flags.DEFINE_bool("export", _DEFAULTS.export, "Write the serving SavedModel to <model_dir>/export.")
flags.mark_flags_as_required(["data_dir", "model_dir"])

FLAGS = flags.FLAGS


def _pair(values: list[str], name: str) -> tuple[float, float]:
    if len(values) != 2:
        raise app.UsageError(f"--{name} takes two numbers, lowest,highest; got {values}")
    low, high = (float(v) for v in values)
    if low > high:
        raise app.UsageError(f"--{name}: {low} > {high}")
    return low, high


def config_from_flags() -> config_lib.TrainConfig:
    """Reads the parsed flags, once, into the typed config."""
    augment = None
    if FLAGS.augment:
        augment = AugmentConfig(gain_db=FLAGS.gain_db, time_masks=FLAGS.time_masks,
                                time_mask_fraction=FLAGS.time_mask_fraction, freq_masks=FLAGS.freq_masks,
                                freq_mask_fraction=FLAGS.freq_mask_fraction, tilt_db=FLAGS.tilt_db,
                                noise_prob=FLAGS.noise_prob, noise_snr_db=_pair(FLAGS.noise_snr_db, "noise_snr_db"),
                                lowpass_prob=FLAGS.lowpass_prob, lowpass_hz=_pair(FLAGS.lowpass_hz, "lowpass_hz"),
                                freq_warp=FLAGS.freq_warp)
    return config_lib.TrainConfig(
        data_dir=FLAGS.data_dir, model_dir=FLAGS.model_dir, model=FLAGS.model, features=FLAGS.features,
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate, lr_schedule=FLAGS.lr_schedule, warmup_epochs=FLAGS.warmup_epochs,
        weight_decay=FLAGS.weight_decay, augment=augment, strategy=FLAGS.strategy, tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision, seed=FLAGS.seed, steps_per_execution=FLAGS.steps_per_execution,
        early_stopping_patience=FLAGS.early_stopping_patience, shuffle_buffer=FLAGS.shuffle_buffer,
        deterministic=FLAGS.deterministic, cache=FLAGS.cache, backup_every_steps=FLAGS.backup_every_steps,
        export=FLAGS.export,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:
        # TensorFlow's INFO chatter (checkpoint sharding, saver) hides the
        # epoch lines; --verbosity=0 brings it back.
        logging.set_verbosity(logging.WARNING)
    from model import train_lib  # TensorFlow loads here, after flags are checked.

    own_flags = FLAGS.get_key_flags_for_module(sys.argv[0]) or FLAGS.get_key_flags_for_module(__name__)
    try:
        train_lib.train(config_from_flags(), flags_text="".join(f.serialize() + "\n" for f in own_flags))
    except (ValueError, FileNotFoundError) as e:  # mismatched features, missing data, bad settings
        sys.exit(f"train: error: {e}")


if __name__ == "__main__":
    app.run(main)
