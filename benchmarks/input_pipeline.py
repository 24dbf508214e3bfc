r"""Input throughput against training consumption, side by side in one run.

On the same clips:
(a) the seed article's ``keras.utils.Sequence``: per batch, decode clips,
    ``abs(real(stft))`` at 48 kHz, random block choice (its ``__getitem__``);
(b) this project's tf.data input function (``pipeline.inputs``, training
    mode: shuffle, batched parse, normalize, augment) on the Beam job's
    TFRecords of those clips: log-mel (default) streamed from the shards
    and with ``cache`` (after the first pass), and stft_seed;
(c) the default model's training consumption: ``model.fit`` steps on
    in-memory batches, so only the model's cost is measured.

Goals (issue 3): (b) >= 100x (a), and (b) >= 5x (c).

Uses real Common Voice MP3s from ../shared/data when present, else generated
clips. Prints a table; the last line is one JSON object.

Usage:
  python -m benchmarks.input_pipeline [--clips=200] [--data=../shared/data/commonvoice-6.1-sample]
"""

from __future__ import annotations

import os
import random
import tempfile
import time

from pipeline import console

if __name__ == "__main__":
    console.silence_tensorflow_startup()  # before TensorFlow is imported

import numpy as np
from absl import app, flags

from benchmarks import common

FLAGS = flags.FLAGS
BATCH = 64


def seed_sequence_rate(paths: list[str], labels: list[int], batches: int) -> float:
    """Blocks per second of the seed's Sequence (its __getitem__, faithfully)."""
    import tf_keras as keras

    from pipeline import audio, features

    fs = features.STFT_SEED  # the seed's 48 kHz, 100 x 513 blocks

    def audio_to_tensor(path):
        return common.seed_blocks(audio.read_audio_file(path, fs.sample_rate), fs.sample_rate)

    # The seed computes min_parts over all its clips first (not timed, as there);
    # a clip shorter than one block would make it 0, which the seed would divide by.
    min_parts = max(1, min(len(audio_to_tensor(p)) for p in paths))

    class SeedSequence(keras.utils.Sequence):
        def __len__(self):
            return len(paths) * min_parts // BATCH

        def __getitem__(self, idx):
            x = np.zeros((BATCH, *fs.block_shape))
            y = np.zeros((BATCH, 2))
            per = BATCH // min_parts
            for i in range(per):
                k = (idx * per + i) % len(paths)
                voice = audio_to_tensor(paths[k])
                for j in range(min_parts):
                    x[i * min_parts + j] = random.choice(voice) if len(voice) else 0
                    y[i * min_parts + j] = [1 - labels[k], labels[k]]
            return x, y

    seq = SeedSequence()
    seq[0]  # warm-up (tracing, first decode)
    start = time.perf_counter()
    for idx in range(1, batches + 1):
        seq[idx % max(1, len(seq))]
    return batches * BATCH / (time.perf_counter() - start)


def input_fn_rate(data_dir: str, feature_name: str, batches: int, cache: bool = False) -> float:
    """Blocks per second the training input function delivers (after one pass when cached)."""
    from pipeline import augment, features, inputs, metadata

    meta = metadata.read_metadata(data_dir)
    fs = metadata.check_compatible(meta, features.get_feature_set(feature_name), data_dir)
    config = inputs.InputConfig(data_dir, features.TRAIN, BATCH, is_training=True, repeat=True,
                                augment=augment.AugmentConfig(), read=inputs.ReadOptions(cache=cache))
    it = iter(inputs.make_dataset(config, fs, metadata.Normalizer.from_metadata(meta)))
    warmup = meta.blocks(features.TRAIN) // BATCH + 2 if cache else 5
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH / (time.perf_counter() - start)


def training_rate(steps: int) -> float:
    """Blocks per second ``model.fit`` consumes for the default model (input excluded)."""
    import tensorflow as tf
    import tf_keras as keras

    from model.train import models
    from pipeline import features

    model = models.build_model(models.DEFAULT_MODEL, features.LOG_MEL.block_shape)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy()])
    x = tf.random.normal([BATCH, *features.LOG_MEL.block_shape])
    y = tf.cast(tf.random.uniform([BATCH]) > 0.5, tf.float32)
    data = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0)  # trace
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * BATCH / (time.perf_counter() - start)


def preprocess(locale_dir: str, out: str, feature_name: str) -> None:
    """Runs the job in this process (in-memory runner): every clip of ``locale_dir`` to train shards."""
    from beam_jobs import job
    from pipeline import features

    fs = features.get_feature_set(feature_name)
    # Several shards, as any real dataset has (real ones are 128 MB each), so
    # the interleave reads files in parallel.
    config = job.PreprocessConfig(cv_dirs=(locale_dir,), output_dir=out, feature_set=fs,
                                  split_fractions=(1.0, 0.0, 0.0), max_clips_per_speaker=0, max_blocks_per_clip=0,
                                  target_shard_mb=fs.block_nbytes * 200 / 2**20)
    job.run(config, ["--runner=DirectRunner", "--direct_running_mode=in_memory"])


def define_flags() -> None:
    """This benchmark's flags (defined only when it runs, so importing it defines none)."""
    flags.DEFINE_integer("clips", 200, "Clips to measure on (half male, half female).")
    flags.DEFINE_string("data", common.DEFAULT_DATA, "A Common Voice release root (else clips are generated).")
    flags.DEFINE_integer("seed_batches", 3, "Batches of the seed's Sequence to time.")
    flags.DEFINE_integer("input_batches", 300, "Batches of the log-mel input function to time (stft_seed: a tenth).")
    flags.DEFINE_integer("train_steps", 60, "Training steps to time.")


def measure(clips: list, tmp: str) -> dict:
    """Blocks per second of each path, on the job's output for ``clips``."""
    locale_dir = common.write_corpus(os.path.join(tmp, "corpus"), clips)
    paths = [c.audio_path for c in clips]
    labels = [c.label for c in clips]
    for name in ("log_mel", "stft_seed"):
        preprocess(locale_dir, os.path.join(tmp, name), name)
    return {
        "seed_sequence_blocks_per_s": seed_sequence_rate(paths, labels, FLAGS.seed_batches),
        "input_fn_log_mel_blocks_per_s": input_fn_rate(os.path.join(tmp, "log_mel"), "log_mel", FLAGS.input_batches),
        "input_fn_log_mel_cached_blocks_per_s": input_fn_rate(os.path.join(tmp, "log_mel"), "log_mel",
                                                              FLAGS.input_batches, cache=True),
        "input_fn_stft_seed_blocks_per_s": input_fn_rate(os.path.join(tmp, "stft_seed"), "stft_seed",
                                                         max(1, FLAGS.input_batches // 10)),
        "cnn_training_blocks_per_s": training_rate(FLAGS.train_steps),
    }


def main(argv: list[str]) -> None:
    del argv
    with tempfile.TemporaryDirectory() as tmp:
        clips, source = common.load_clips(FLAGS.data, FLAGS.clips, tmp)
        print(f"{len(clips)} clips from {source}; batch {BATCH}", flush=True)
        figures = measure(clips, tmp)
    figures["input_vs_seed_sequence"] = figures["input_fn_log_mel_blocks_per_s"] / figures["seed_sequence_blocks_per_s"]
    figures["input_cached_vs_seed_sequence"] = (figures["input_fn_log_mel_cached_blocks_per_s"]
                                                / figures["seed_sequence_blocks_per_s"])
    figures["input_stft_vs_seed_sequence"] = (figures["input_fn_stft_seed_blocks_per_s"]
                                              / figures["seed_sequence_blocks_per_s"])
    figures["input_vs_training"] = figures["input_fn_log_mel_blocks_per_s"] / figures["cnn_training_blocks_per_s"]
    figures["goal_100x_seed_met_streaming"] = figures["input_vs_seed_sequence"] >= 100
    figures["goal_100x_seed_met_cached"] = figures["input_cached_vs_seed_sequence"] >= 100
    figures["goal_5x_training_met"] = figures["input_vs_training"] >= 5
    figures["clips"] = len(clips)
    figures["cpus"] = os.cpu_count()

    print(f"{'path':<40}{'blocks/s':>12}")
    for key in ("seed_sequence_blocks_per_s", "input_fn_log_mel_blocks_per_s", "input_fn_log_mel_cached_blocks_per_s",
                "input_fn_stft_seed_blocks_per_s", "cnn_training_blocks_per_s"):
        print(f"{key.removesuffix('_blocks_per_s'):<40}{figures[key]:>12.0f}")
    print(f"input fn / seed Sequence: {figures['input_vs_seed_sequence']:.0f}x streaming from the shards, "
          f"{figures['input_cached_vs_seed_sequence']:.0f}x with --cache (goal >= 100x); "
          f"stft_seed input fn / seed Sequence: {figures['input_stft_vs_seed_sequence']:.0f}x; "
          f"input fn / training: {figures['input_vs_training']:.1f}x (goal >= 5x)")
    common.print_json(figures, digits=2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
