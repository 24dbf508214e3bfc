"""One-step training of every model, presets, mixed precision, export and reload."""

import dataclasses
import glob
import json
import math
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from beam_jobs import spill
from beam_jobs.decode import DecodeAudioFn
from model import workflow
from model.export import serving as export
from model.train import config as config_lib
from model.train import optimization, train_lib
from pipeline import audio, augment, examples, features, inputs, metadata, records
from pipeline import common_voice as cv
from tests.helpers import REPO


def _config(data_dir, model_dir, **overrides) -> config_lib.TrainConfig:
    # A batch larger than the split: one step per epoch.
    settings = dict(epochs=1, batch_size=512, export=False, strategy="cpu")
    settings.update(overrides)
    return config_lib.TrainConfig(data_dir=data_dir, model_dir=str(model_dir), **settings)


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _write_separable_data(root, per_class: int = 32, nan_block: tuple[int, int] | None = None,
                          scale: float = 1.0) -> str:
    """A data directory like the Beam job's: 2 train shards, 1 validation shard, male blocks around -1 and
    female around +1 in every cell (separable at a glance), one block per clip.

    Args:
      root: the directory (created).
      per_class: blocks per gender per split.
      nan_block: (train shard, record) whose block gets one NaN cell.
      scale: multiplies every block (finite but absurd values overflow the model).
    """
    fs, rng = features.LOG_MEL, np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    splits = {}
    for split, shards in ((features.TRAIN, 2), (features.VALIDATION, 1)):
        labels = np.arange(2 * per_class) % 2
        blocks = rng.normal(2.0 * labels[:, None, None] - 1.0, 0.5, (len(labels), *fs.block_shape)) * scale
        blocks = blocks.astype(np.float32)
        for shard, part in enumerate(np.array_split(np.arange(len(labels)), shards)):
            with tf.io.TFRecordWriter(os.path.join(root, features.shard_name(split, shard, shards))) as writer:
                for record, i in enumerate(part):
                    if split == features.TRAIN and nan_block == (shard, record):
                        blocks[i, 5, 7] = np.nan
                    writer.write(records.encode_block(blocks[i], labels[i], f"en/{split}{i}.mp3", f"s{i}", 0))
        splits[split] = {"blocks": {"male": per_class, "female": per_class},
                         "clips": {"male": per_class, "female": per_class}}
    meta = {"format_version": features.FORMAT_VERSION, "feature_set": fs.to_dict(), "splits": splits,
            "normalization": {"mean": [0.0] * fs.num_bins, "std": [1.0] * fs.num_bins}}
    with open(os.path.join(root, features.METADATA_FILENAME), "w") as f:
        json.dump(meta, f)
    return str(root)


@pytest.mark.parametrize("model_name, feature_name", [("cnn", "log_mel"), ("cnn_envelope", "log_mel"),
                                                      ("seed_conv2d", "stft_seed"), ("seed_conv1d", "stft_seed")])
@pytest.mark.slow
def test_one_step_of_each_model_writes_the_run(model_name, feature_name, log_mel_data, stft_seed_data, tmp_path):
    data = log_mel_data if feature_name == "log_mel" else stft_seed_data
    result = workflow.run(_config(data, tmp_path, model=model_name, features=feature_name), flags_text="--x=1\n")
    assert not result.resumed and result.replicas == 1
    assert np.isfinite(result.history["loss"][0]) and len(result.history["loss"]) == 1
    for name in (train_lib.HISTORY_FILENAME, train_lib.CURVES_FILENAME, train_lib.CONFIG_FILENAME,
                 train_lib.FLAGS_FILENAME, train_lib.WEIGHTS_FILENAME, train_lib.VALIDATION_FILENAME):
        assert os.path.exists(tmp_path / name), name
    assert glob.glob(str(tmp_path / train_lib.CHECKPOINT_DIRNAME / "epoch-001*"))
    assert glob.glob(str(tmp_path / train_lib.LOG_DIRNAME / "train" / "events.out.tfevents.*"))
    assert json.loads((tmp_path / train_lib.CONFIG_FILENAME).read_text())["model"] == model_name
    validation = json.loads((tmp_path / train_lib.VALIDATION_FILENAME).read_text())
    meta = metadata.read_metadata(data)
    assert validation["blocks"] == meta.blocks(features.VALIDATION)
    assert {"loss", "val_loss", "accuracy", "learning_rate"} <= set(result.history)


@pytest.mark.slow
def test_training_learns_a_separable_fixture(tmp_path):
    data = _write_separable_data(tmp_path / "data", per_class=32)
    result = workflow.run(_config(data, tmp_path / "run", epochs=6, batch_size=16, augment=None))
    losses = result.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.validation["clip_accuracy"] == 1.0 and result.validation["blocks"] == 64


@pytest.mark.slow
def test_tensorboard_has_loss_accuracy_and_learning_rate(log_mel_data, tmp_path):
    workflow.run(_config(log_mel_data, tmp_path, epochs=2))
    tags = set()
    for path in glob.glob(str(tmp_path / train_lib.LOG_DIRNAME / "train" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= tags


@pytest.mark.slow
def test_mixed_precision_step(log_mel_data, tmp_path):
    result = workflow.run(_config(log_mel_data, tmp_path, mixed_precision="mixed_float16"))
    assert np.isfinite(result.history["loss"][0])
    convs = [layer for layer in result.model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "float16" and result.model.layers[-1].compute_dtype == "float32"


def test_feature_mismatch_is_refused_before_training(log_mel_data, tmp_path):
    with pytest.raises(metadata.DataMismatchError, match="--features=stft_seed"):
        workflow.run(_config(log_mel_data, tmp_path, model="seed_conv2d", features="stft_seed"))
    assert not os.path.exists(tmp_path / train_lib.HISTORY_FILENAME)


def test_config_rejects_unknown_choices():
    with pytest.raises(ValueError, match="strategy='gpu'"):
        config_lib.TrainConfig(data_dir="d", model_dir="m", strategy="gpu")


def _old_warmup_schedule(step: int, peak: float, warmup: int, total: int, decay: str) -> float:
    """The hand-written schedule Keras' CosineDecay replaced, as reference."""
    if step < warmup:
        return peak * min(1.0, (step + 1.0) / max(warmup, 1.0))
    if decay != "cosine":
        return peak
    progress = min(max((step - warmup) / max(total - warmup, 1.0), 0.0), 1.0)
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize("decay", ["cosine", "constant"])
@pytest.mark.parametrize("warmup_epochs, epochs, steps_per_epoch", [(0, 5, 22), (1, 5, 22), (2, 3, 10), (1, 1, 10)])
def test_lr_schedule_matches_the_old_one_after_warmup(decay, warmup_epochs, epochs, steps_per_epoch):
    config = config_lib.TrainConfig(data_dir="d", model_dir="m", learning_rate=1e-3, lr_schedule=decay,
                                    warmup_epochs=warmup_epochs, epochs=epochs)
    schedule = optimization.make_schedule(config, steps_per_epoch)
    warmup, total = warmup_epochs * steps_per_epoch, epochs * steps_per_epoch
    new = np.array([float(schedule(step)) for step in range(total + 2)])
    old = np.array([_old_warmup_schedule(step, 1e-3, warmup, total, decay) for step in range(total + 2)])
    # The same rates from the end of warm-up on (the decay itself, and the rate logged after the last step).
    np.testing.assert_allclose(new[warmup:], old[warmup:], rtol=0, atol=1e-6 * 1e-3)
    # Warm-up: Keras starts at 0 and reaches the peak at step `warmup`, the old one a step earlier.
    np.testing.assert_allclose(new[:warmup], np.arange(warmup) * 1e-3 / max(warmup, 1), rtol=1e-5)
    np.testing.assert_allclose(old[:warmup] - new[:warmup], 1e-3 / max(warmup, 1), rtol=1e-4)
    assert new[warmup] == pytest.approx(1e-3)
    if decay == "cosine" and total > warmup:
        assert new[total] == pytest.approx(0.0, abs=1e-12)
    if decay == "constant":
        np.testing.assert_allclose(new[warmup:], 1e-3, rtol=1e-6)


def _shard(data_dir, split, index, count):
    return os.path.join(data_dir, features.shard_name(split, index, count))


@pytest.mark.slow
def test_a_non_finite_block_stops_training_naming_its_shard(tmp_path):
    data = _write_separable_data(tmp_path / "data", per_class=8, nan_block=(1, 3))
    with pytest.raises(inputs.ShardError, match=re.escape(_shard(data, features.TRAIN, 1, 2))):
        workflow.run(_config(data, tmp_path / "run", export=True))
    assert not os.path.exists(tmp_path / "run" / train_lib.WEIGHTS_FILENAME)


@pytest.mark.slow
def test_a_truncated_shard_stops_training_naming_it(tmp_path):
    data = _write_separable_data(tmp_path / "data", per_class=8)
    path = _shard(data, features.TRAIN, 0, 2)
    os.truncate(path, os.path.getsize(path) - 100)
    with pytest.raises(inputs.ShardError, match=re.escape(f"{path}: truncated record")):
        workflow.run(_config(data, tmp_path / "run", export=True))
    assert not os.path.exists(tmp_path / "run" / export.EXPORT_DIRNAME)


@pytest.mark.slow
def test_a_non_finite_loss_fails_the_run_without_export(tmp_path, monkeypatch):
    data = _write_separable_data(tmp_path / "data", per_class=8)
    # A loss that is NaN from the first batch, as a diverging run's would be.
    monkeypatch.setattr(keras.losses, "BinaryCrossentropy", lambda: lambda y, p: p[:, 0] * np.nan)
    with pytest.raises(train_lib.NonFiniteLossError, match=r"loss became nan at epoch 1, batch 0.*no export"):
        workflow.run(_config(data, tmp_path / "run", epochs=2, batch_size=4, export=True))
    assert not os.path.exists(tmp_path / "run" / export.EXPORT_DIRNAME)
    assert not os.path.exists(tmp_path / "run" / train_lib.WEIGHTS_FILENAME)


@pytest.mark.slow
def test_weights_gone_non_finite_are_never_saved_or_exported(tmp_path):
    # Blocks so large (yet finite: the input check passes them) that the first convolution overflows; the
    # clipped cross-entropy stays finite, so only the final check sees the NaN weights.
    data = _write_separable_data(tmp_path / "data", per_class=8, scale=1e37)
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf\) in: stage1_conv/kernel"):
        workflow.run(_config(data, tmp_path / "run", epochs=1, batch_size=4, export=True, augment=None))
    assert not os.path.exists(tmp_path / "run" / export.EXPORT_DIRNAME)
    assert not os.path.exists(tmp_path / "run" / train_lib.WEIGHTS_FILENAME)


def _corpus_clip(corpus_dir) -> cv.Clip:
    path = sorted(glob.glob(os.path.join(corpus_dir, "*", "clips", "*.mp3")))[0]
    return cv.Clip(clip_id="x", audio_path=path, speaker_id="s", label=0, locale="en")


@pytest.mark.slow
def test_export_reload_matches_keras_on_the_beam_features(log_mel_data, corpus_dir, tmp_path):
    result = workflow.run(_config(log_mel_data, tmp_path, epochs=2, export=True))
    fs = features.LOG_MEL
    norm = metadata.Normalizer.from_metadata(metadata.read_metadata(log_mel_data))
    keras_model = train_lib.float32_copy(result.model.get_weights(), _config(log_mel_data, tmp_path), fs.block_shape)

    # The Beam job's DoFn, called directly: every voiced block of several clips.
    fn = DecodeAudioFn(fs, max_blocks_per_clip=0, spill_dir=str(tmp_path / "spill"))
    fn.setup()
    fn.start_bundle()
    paths = sorted(glob.glob(os.path.join(corpus_dir, "*", "clips", "*.mp3")))[:4]
    decoded = [fn.process(("train", cv.Clip("en/" + os.path.basename(path), path, "s", 0, "en"))) for path in paths]
    decoded = [out for outputs in decoded for out in outputs]
    fn.finish_bundle()
    expected = []
    for out in decoded:
        blocks = np.stack([b for *_, b in spill.read_blocks([(out.spill, range(out.spill.count))], fs.block_shape)])
        expected.append(float(np.mean(keras_model(norm(blocks), training=False).numpy())))

    served = tf.saved_model.load(result.export_dir).signatures["serving_default"]
    waves = [audio.read_audio_file(p, fs.sample_rate) for p in paths]
    batch = np.zeros((len(waves), max(map(len, waves))), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    outputs = served(waveform=tf.constant(batch), length=tf.constant([len(w) for w in waves], tf.int32))
    np.testing.assert_allclose(outputs["p_female"].numpy(), expected, atol=1e-5)
    genders = [g.decode() for g in outputs["gender"].numpy()]
    assert genders == [features.GENDER_NAMES[int(p >= 0.5)] for p in expected]
    info = json.loads(open(os.path.join(result.export_dir, export.EXPORT_METADATA)).read())
    assert info["feature_set"]["sample_rate"] == fs.sample_rate and info["model"] == "cnn"


@pytest.mark.slow
def test_export_handles_short_and_silent_clips(log_mel_data, tmp_path):
    result = workflow.run(_config(log_mel_data, tmp_path, export=True))
    served = tf.saved_model.load(result.export_dir).signatures["serving_default"]
    rate = features.LOG_MEL.sample_rate
    t = np.arange(3 * rate) / rate
    voice = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    batch = np.stack([voice, np.zeros_like(voice), voice])
    out = served(waveform=tf.constant(batch), length=tf.constant([3 * rate, 3 * rate, rate // 4], tf.int32))
    assert out["blocks"].numpy().tolist() == [3, 3, 0]
    assert out["voiced_blocks"].numpy().tolist() == [3, 0, 0]
    p = out["p_female"].numpy()
    assert np.isfinite(p[:2]).all() and np.isnan(p[2])
    assert out["gender"].numpy()[2] == b""


def test_stored_blocks_are_the_dofn_blocks(log_mel_data, corpus_dir, tmp_path):
    # The TFRecords hold exactly what the DoFn computes, so the export test
    # above also covers the written data.
    fs = features.LOG_MEL
    files = sorted(glob.glob(os.path.join(log_mel_data, features.shard_pattern(features.TRAIN))))
    record = next(iter(tf.data.TFRecordDataset(files, compression_type=features.SHARD_COMPRESSION)))
    parsed = examples.parse_blocks(record, fs)
    clip_id = parsed[features.CLIP_ID_KEY].numpy().decode()
    locale, name = clip_id.split("/", 1)
    fn = DecodeAudioFn(fs, max_blocks_per_clip=0, spill_dir=str(tmp_path))
    fn.setup()
    fn.start_bundle()
    (out,) = list(fn.process(("train", cv.Clip(clip_id, os.path.join(corpus_dir, locale, "clips", name), "s", 0,
                                               locale))))
    fn.finish_bundle()
    slot = list(out.block_indices).index(int(parsed[features.BLOCK_INDEX_KEY]))
    [(_, _, block)] = spill.read_blocks([(out.spill, [slot])], fs.block_shape)
    np.testing.assert_array_equal(block, parsed[features.BLOCK_KEY])


def test_preset_flagfiles_parse_and_include(tmp_path):
    from absl import flags

    from model.train import cli as train_main

    FLAGS = flags.FLAGS
    base = tmp_path / "base.flags"
    base.write_text("--epochs=3\n--batch_size=32\n--model=seed_conv1d\n")
    child = tmp_path / "child.flags"
    child.write_text(f"--flagfile={base}\n--batch_size=16\n--data_dir=d\n--model_dir=m\n")
    try:
        FLAGS(["train", f"--flagfile={child}"])
        config = train_main.config_from_flags()
        assert (config.epochs, config.batch_size, config.model) == (3, 16, "seed_conv1d")
        for preset in sorted(glob.glob(os.path.join(REPO, "configs", "*.flags"))):
            if "preprocess" in preset or "dataflow" in preset:
                continue
            FLAGS.unparse_flags()
            cwd = os.getcwd()
            os.chdir(REPO)  # presets include each other by repo-relative path
            try:
                # The presets ask for these three (the wheel: the fusion's; the others ignore it).
                FLAGS(["train", f"--flagfile={preset}", "--data_dir=d", "--model_dir=m", "--ina_wheel=ina.whl"])
            finally:
                os.chdir(cwd)
            assert isinstance(train_main.config_from_flags(), config_lib.TrainConfig), preset
    finally:
        FLAGS.unparse_flags()


def test_seed_presets_use_the_seed_hyperparameters():
    text = {name: open(os.path.join(REPO, "configs", f"{name}.flags")).read() for name in ("seed_conv2d",
                                                                                           "seed_conv1d")}
    for name, body in text.items():
        for line in ("--batch_size=64", "--epochs=15", "--optimizer=adam", "--features=stft_seed",
                     f"--model={name}"):
            assert line in body, (name, line)


def test_config_dataclass_roundtrips():
    config = config_lib.TrainConfig(data_dir="d", model_dir="m")
    assert config_lib.TrainConfig(**{**config.to_dict(), "augment": None}).augment is None
    assert dataclasses.asdict(config)["augment"]["gain_db"] > 0


def test_metadata_counts_the_shards_do_not_hold_are_refused(tmp_path):
    from model.train import datasets

    data = _write_separable_data(tmp_path / "data", per_class=8)
    config = _config(data, tmp_path / "run")
    assert datasets.read_training_data(config).train_blocks == 16  # the truth passes
    path = os.path.join(data, features.METADATA_FILENAME)
    meta = json.load(open(path))
    meta["splits"][features.TRAIN]["blocks"] = {"male": 80, "female": 80}
    json.dump(meta, open(path, "w"))
    with pytest.raises(metadata.DataMismatchError, match=re.escape(
            f"{path} claims 160 train blocks but the train shards hold 16 records")):
        datasets.read_training_data(config)
    # The job's read-back count, left as it was, disagrees first; edited to match, the shards still decide.
    meta["blocks_read_back"] = {features.TRAIN: 16, features.VALIDATION: 16}
    json.dump(meta, open(path, "w"))
    with pytest.raises(metadata.DataMismatchError, match="claims 160 train blocks but its own read-back count is 16"):
        datasets.read_training_data(config)
    meta["blocks_read_back"][features.TRAIN] = 160
    json.dump(meta, open(path, "w"))
    with pytest.raises(metadata.DataMismatchError, match="the train shards hold 16 records"):
        datasets.read_training_data(config)


@pytest.mark.slow
def test_train_cli_refuses_edited_counts_in_one_line(tmp_path):
    from tests.helpers import run_module

    data = _write_separable_data(tmp_path / "data", per_class=8)
    path = os.path.join(data, features.METADATA_FILENAME)
    meta = json.load(open(path))
    meta["splits"][features.VALIDATION]["blocks"] = {"male": 1, "female": 1}
    json.dump(meta, open(path, "w"))
    proc = run_module("model.train", f"--data_dir={data}", f"--model_dir={tmp_path / 'run'}", "--epochs=1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"train: error: {path} claims 2 validation blocks but the validation shards hold 16 records: the file was "
        "edited or the shards changed; re-run beam_jobs.preprocess")


def test_the_fusion_needs_its_features_and_the_wheel(tmp_path):
    with pytest.raises(ValueError, match="needs --features=log_mel_ina and --ina_wheel"):
        _config(tmp_path, tmp_path, model="cnn_ina_fusion", ina_wheel="ina.whl")  # log_mel data
    with pytest.raises(ValueError, match="needs --features=log_mel_ina and --ina_wheel"):
        _config(tmp_path, tmp_path, model="cnn_ina_fusion", features="log_mel_ina")


@pytest.mark.slow
def test_one_fine_tuning_step_of_the_fusion_moves_only_inas_unfrozen_layers(log_mel_ina_data, ina_wheel, tmp_path):
    from model.train import ina, loading

    config = _config(log_mel_ina_data, tmp_path, model="cnn_ina_fusion", features="log_mel_ina",
                     ina_wheel=ina_wheel, ina_trainable_layers=1, learning_rate=1e-2, export=True, calibrate=False)
    result = workflow.run(config)
    assert np.isfinite(result.history["loss"][0])
    model, feature_set, _ = loading.load_block_model(str(tmp_path))
    assert feature_set == features.LOG_MEL_INA
    wheel_layers = [layer for layer in ina.load_ina_cnn(ina_wheel).layers if layer.weights]
    tuned_cnn = model.get_layer("ina_gender_cnn").layers[-1]
    tuned_layers = [layer for layer in tuned_cnn.layers if layer.weights]
    for before, after in zip(wheel_layers[:-1], tuned_layers[:-1], strict=True):  # frozen: the wheel's weights
        for a, b in zip(before.get_weights(), after.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(wheel_layers[-1].get_weights()[0], tuned_layers[-1].get_weights()[0])
    assert os.path.exists(tmp_path / export.EXPORT_DIRNAME / export.LITERT_FILENAME)
    # The run's export carries ina's weights: their attribution and the wheel's MIT notice go with it.
    assert "MIT" in (tmp_path / export.EXPORT_DIRNAME / ina.LICENSE_NAME).read_text()
    info = json.loads((tmp_path / export.EXPORT_DIRNAME / export.EXPORT_METADATA).read_text())
    assert info["attribution"] == ina.ATTRIBUTION and info["model"] == "cnn_ina_fusion"


@pytest.mark.parametrize("settings, message", [
    (dict(ina_consistency=1.0), "--ina_consistency is for --model=cnn_ina_fusion only"),
    (dict(cnn_branch_from="model/pretrained"), "--cnn_branch_from is for --model=cnn_ina_fusion only"),
    (dict(model="cnn_ina_fusion", features="log_mel_ina", ina_wheel="ina.whl", ina_consistency=1.0),
     "give --ina_trainable_layers > 0"),
    (dict(model="cnn_ina_fusion", features="log_mel_ina", ina_wheel="ina.whl", ina_trainable_layers=1,
          ina_consistency=float("nan")), "ina_consistency must be finite and >= 0"),
    (dict(model="cnn_ina_fusion", features="log_mel_ina", ina_wheel="ina.whl", cnn_branch_trainable=False),
     "give --cnn_branch_from"),
])
def test_the_fusions_fine_tuning_settings_are_checked(tmp_path, settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _config(tmp_path, tmp_path, **settings)


@pytest.mark.slow
def test_one_consistency_step_trains_ina_beside_the_fixed_shipped_cnn(log_mel_ina_data, ina_wheel, tmp_path):
    import shutil

    from model.predict import export_format
    from model.train import consistency, ina, loading, warm_start

    # The shipped export with this data's metadata as its training metadata: the statistics check passes (its
    # refusals are tests/model/train/test_warm_start.py's); what is tested here is the run.
    cnn_export = tmp_path / "cnn_export"
    shutil.copytree(export_format.PRETRAINED_DIR, cnn_export)
    shutil.copy(os.path.join(log_mel_ina_data, features.METADATA_FILENAME),
                cnn_export / features.TRAINING_METADATA_FILENAME)
    run_dir = tmp_path / "run"
    config = _config(log_mel_ina_data, run_dir, model="cnn_ina_fusion", features="log_mel_ina", ina_wheel=ina_wheel,
                     ina_trainable_layers=19, ina_consistency=1.0, cnn_branch_from=str(cnn_export),
                     cnn_branch_trainable=False, learning_rate=1e-3,
                     augment=augment.AugmentConfig(tilt_db=10.0, noise_prob=1.0))  # changes ina's standardised part
    result = train_lib.train(config)
    assert np.isfinite(result.history["loss"][0]) and result.history[consistency.CONSISTENCY_METRIC][0] > 0
    assert "val_" + consistency.CONSISTENCY_METRIC not in result.history  # scored on training batches only
    model, _, _ = loading.load_block_model(str(run_dir))  # the fusion alone: no teacher in the saved weights
    assert model.name == "cnn_ina_fusion"
    shipped = warm_start.cnn_from_export(str(cnn_export))
    for a, b in zip(shipped.get_weights(), model.get_layer("cnn").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    wheel_kernels = [w for w in ina.load_ina_cnn(ina_wheel).get_weights() if w.ndim > 1]
    tuned_kernels = [w for w in model.get_layer("ina_gender_cnn").get_weights() if w.ndim > 1]
    assert len(wheel_kernels) == len(tuned_kernels)
    assert all(not np.array_equal(a, b) for a, b in zip(wheel_kernels, tuned_kernels, strict=True))

    bad = tmp_path / "other_stats"
    shutil.copytree(export_format.PRETRAINED_DIR, bad)  # the shipped statistics: not the generated data's
    with pytest.raises(ValueError, match="the data's log_mel statistics are not its cnn's"):
        train_lib.train(dataclasses.replace(config, cnn_branch_from=str(bad), model_dir=str(tmp_path / "run2")))
