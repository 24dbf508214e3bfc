"""Tests of pipeline.config_flags, and proof that each main's derived flags equal its old hand-written ones.

Run as a module (``python -m tests.pipeline.test_config_flags MAIN``) it prints the key flags MAIN defines,
as JSON: the slow tests read each main that way, one per process, since the Beam mains share flag names.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import os
import sys
from typing import Literal

import pytest
from absl import flags

from pipeline import config_flags

# The flags each main (by its module since issue 22) defined by hand before issue 12 (name: (absl flag_type(), default[, enum values])),
# recorded from that code once. The derived flags must keep every name, type and default.
OLD_FLAGS = {
    "model.train.cli": {
        "data_dir": ("string", None),
        "model_dir": ("string", None),
        "model": ("string enum", "cnn", ("cnn", "cnn_envelope", "cnn_ina_fusion", "seed_conv1d", "seed_conv2d")),
        "features": ("string enum", "log_mel", ("ina_mel", "log_mel", "log_mel_ina", "stft_seed")),  # issue 21
        "ina_wheel": ("string", ""),  # the fusion's (issue 21)
        "ina_trainable_layers": ("int", 0),
        "ina_consistency": ("float", 0.0),  # the fusion's consistency fine-tuning and warm start (issue 21)
        "cnn_branch_from": ("string", ""),
        "cnn_branch_trainable": ("bool", True),
        "epochs": ("int", 20),
        "batch_size": ("int", 64),
        "optimizer": ("string enum", "adam", ("adam", "adamw", "sgd")),
        "learning_rate": ("float", 0.001),
        "lr_schedule": ("string enum", "cosine", ("constant", "cosine")),
        "warmup_epochs": ("float", 0.0),
        "weight_decay": ("float", 0.0),
        "augment": ("bool", True),
        "gain_db": ("float", 6.0),
        "time_masks": ("int", 2),
        "time_mask_fraction": ("float", 0.125),
        "freq_masks": ("int", 2),
        "freq_mask_fraction": ("float", 0.125),
        "tilt_db": ("float", 0.0),
        "noise_prob": ("float", 0.0),
        "noise_snr_db": ("comma separated list of strings", ["5.0", "30.0"]),
        "noise_color": ("string enum", "flat", ("flat", "white", "colored")),  # issue 21 (the fusion's noise gap)
        "lowpass_prob": ("float", 0.0),
        "lowpass_hz": ("comma separated list of strings", ["3400.0", "7000.0"]),
        "freq_warp": ("float", 0.0),
        "strategy": ("string enum", "auto", ("auto", "cpu", "mirrored", "multi_worker", "tpu")),
        "tpu": ("string", ""),
        "mixed_precision": ("string enum", "float32", ("float32", "mixed_float16", "mixed_bfloat16")),
        "seed": ("int", 42),
        "steps_per_execution": ("int", 1),
        "early_stopping_patience": ("int", 0),
        "shuffle_buffer": ("int", 10000),
        "deterministic": ("bool", False),
        "cache": ("bool", False),
        "backup_every_steps": ("int", 0),
        "export": ("bool", True),
        "calibrate": ("bool", True),  # new in issue 22 (calibration as a step of the run); the rest unchanged
    },
    "beam_jobs.preprocess": {
        "cv_dir": ("multi string", None),
        "output_dir": ("string", None),
        "features": ("string enum", "log_mel", ("ina_mel", "log_mel", "log_mel_ina", "stft_seed")),  # issue 21
        "block_frames": ("int", None),
        "split_fractions": ("comma separated list of strings", ["0.8", "0.1", "0.1"]),
        "use_official_splits": ("bool", False),
        "max_clips_per_speaker": ("int", 20),
        "max_blocks_per_clip": ("int", 10),
        "balance_clips": ("bool", True),
        "seed": ("int", 42),
        "limit_clips": ("int", 0),
        "target_shard_mb": ("float", 128.0),
        "overwrite": ("bool", False),
        "max_clip_seconds": ("float", 120.0),
        "augment_copies": ("int", 0),
        "augment_fraction": ("float", 1.0),
        "augment_max_f0_factor": ("float", 1.6),
        "augment_max_f0_rise_hz": ("float", 100.0),
        "augment_female_lowered": ("float", 0.0),
        "window_clips": ("int", 12500),  # issue 24
    },
    # predict and evaluate declared theirs by hand until issue 22.
    "model.predict.cli": {
        "model_dir": ("string", None),
        "format": ("string enum", "text", ("text", "jsonl", "csv", "rttm")),  # rttm: issue 23
        "file_list": ("string", None),
        "min_confidence": ("float", 0.0),
        "speaker_from": ("string", None),
        "segments": ("bool", False),
        "vad": ("string enum", "silero", ("energy", "webrtc", "silero", "none")),
        "decode_workers": ("int", min(8, os.cpu_count() or 1)),
        "jobs": ("int", 1),  # new in issue 23: worker processes
        "chunk": ("int", 64),
        "batch": ("int", 16),  # new in issue 23: files whose speech detection runs as one batch
    },
    "model.evaluate.cli": {
        "model_dir": ("string", None),
        "data_dir": ("string", None),
        "split": ("string enum", "test", ("train", "validation", "test")),
        "batch_size": ("int", 256),
        "attributes": ("multi string", []),
    },
    "model.label.cli": {
        "cv_dir": ("multi string", None),
        "output": ("string", None),
        "model_dir": ("string", None),
        "score_labelled": ("bool", False),
        "mislabel_confidence": ("float", 0.9),
        "limit_clips": ("int", 0),
        "seed": ("int", 42),
    },
}
# Flags preprocess.main maps by hand into PreprocessConfig.feature_set (not a flag-able type).
PREPROCESS_HAND_FLAGS = ("features", "block_frames")


def describe(flag: flags.Flag) -> tuple:
    """(flag_type(), default[, enum values]), the form of OLD_FLAGS."""
    values = getattr(flag.parser, "enum_values", None)
    return (flag.flag_type(), flag.default) + ((tuple(values),) if values else ())


def key_flags(module: str) -> dict[str, tuple]:
    """Imports ``module`` and describes the flags it owns (defined by it, per absl), in definition order."""
    importlib.import_module(module)
    return {f.name: describe(f) for f in flags.FLAGS.get_key_flags_for_module(module)}


def _as_json(described: dict[str, tuple]) -> dict[str, list]:
    return json.loads(json.dumps(described))


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Inner:
    """Nested settings.

    Attributes:
      gain: a gain in dB.
      pair: (low, high) range.
    """

    gain: float = 6.0
    pair: tuple[float, float] = (1.0, 2.0)


@dataclasses.dataclass(frozen=True)
class Extra:
    """Optional nested settings.

    Attributes:
      level (int): how much.
    """

    level: int = 1


@dataclasses.dataclass(frozen=True)
class Sample:
    """A config with every kind of field.

    Attributes:
      paths: input paths, repeatable.
      name: a required name.
      switch: a switch.
      count: how many.
      rate: a rate whose help
        takes two lines.
      mode: a literal choice.
      color: an enum.
      pick: a string chosen from a registry.
      values: any number of floats.
      words: any number of strings.
      note: optional text.
      inner: nested settings.
      extra: optional nested settings.
      table: not flag-able.

    Example:
      ignored: this section is not about attributes.
    """

    paths: tuple[str, ...] = dataclasses.field(metadata=config_flags.flag_options(name="path", multi=True))
    name: str
    switch: bool = True
    count: int = 3
    rate: float = 0.5
    mode: Literal["fast", "slow"] = "slow"
    color: Color = Color.RED
    pick: str = dataclasses.field(default="b", metadata=config_flags.flag_options(choices=("a", "b")))
    values: tuple[float, ...] = (1.0, 2.5)
    words: tuple[str, ...] = ()
    note: str | None = None
    inner: Inner = Inner(gain=3.0)
    extra: Extra | None = None
    table: dict[str, int] = dataclasses.field(default_factory=dict)


def _sample_flags(*argv: str, exclude: tuple[str, ...] = ()) -> flags.FlagValues:
    flag_values = flags.FlagValues()
    config_flags.define_flags(Sample, flag_values, exclude=("table", *exclude))
    flag_values(["prog", *argv])
    return flag_values


def test_each_annotation_kind_gets_its_flag_type():
    flag_values = _sample_flags()
    kinds = {name: flag_values[name].flag_type() for name in flag_values}
    assert kinds == {
        "path": "multi string", "name": "string", "switch": "bool", "count": "int", "rate": "float",
        "mode": "string enum", "color": "enum class", "pick": "string enum",
        "values": "comma separated list of strings", "words": "comma separated list of strings", "note": "string",
        "gain": "float", "pair": "comma separated list of strings", "extra": "bool", "level": "int",
    }
    assert flag_values["mode"].parser.enum_values == ["fast", "slow"]
    assert flag_values["pick"].parser.enum_values == ["a", "b"]


def test_defaults_are_the_dataclass_defaults():
    flag_values = _sample_flags("--name=n", "--path=p")
    assert config_flags.from_flags(Sample, flag_values) == Sample(paths=("p",), name="n")
    assert flag_values["values"].default == ["1.0", "2.5"]
    assert flag_values["gain"].default == 3.0  # the parent's default instance, not Inner's own 6.0
    assert flag_values["name"].default is None and flag_values["path"].default is None  # no default: unset
    assert flag_values["extra"].default is False  # an optional nested config that defaults to None


def test_parsed_flags_build_the_config():
    flag_values = _sample_flags("--path=a", "--path=b", "--name=n", "--noswitch", "--count=7", "--rate=0.25",
                                "--mode=fast", "--color=BLUE", "--pick=a", "--values=1,2,3", "--words=x,y",
                                "--note=hi", "--gain=9", "--pair=3,4", "--extra", "--level=5")
    assert config_flags.from_flags(Sample, flag_values) == Sample(
        paths=("a", "b"), name="n", switch=False, count=7, rate=0.25, mode="fast", color=Color.BLUE, pick="a",
        values=(1.0, 2.0, 3.0), words=("x", "y"), note="hi", inner=Inner(gain=9.0, pair=(3.0, 4.0)),
        extra=Extra(level=5))
    assert config_flags.from_flags(Sample, flag_values, name="override", extra=None).name == "override"


def test_help_comes_from_the_docstring():
    flag_values = _sample_flags()
    assert flag_values["rate"].help == "a rate whose help takes two lines."
    assert flag_values["note"].help == "optional text."
    assert flag_values["level"].help == "how much."  # "name (type): text" entries too
    assert "ignored" not in config_flags.attribute_docs(Sample)


def test_excluded_fields_have_no_flag_and_keep_their_default():
    flag_values = _sample_flags("--name=n", "--path=p", exclude=("inner", "rate"))
    assert "gain" not in flag_values and "rate" not in flag_values and "table" not in flag_values
    config = config_flags.from_flags(Sample, flag_values, table={"a": 1})
    assert (config.inner, config.rate, config.table) == (Inner(gain=3.0), 0.5, {"a": 1})


def test_prefix_and_key_flags_of_the_calling_module():
    flag_values = flags.FlagValues()
    names = config_flags.define_flags(Inner, flag_values, prefix="eval_")
    assert names == ["eval_gain", "eval_pair"]
    # Attributed to this module, not config_flags: a main's --helpshort and flags.txt list them.
    assert [f.name for f in flag_values.get_key_flags_for_module(__name__)] == names
    flag_values(["prog", "--eval_gain=1"])
    assert config_flags.from_flags(Inner, flag_values, prefix="eval_") == Inner(gain=1.0)


@pytest.mark.parametrize("argv, message", [(("--pair=1,2,3",), "--pair takes 2"), (("--values=1,x",), "--values")])
def test_bad_list_values_are_refused(argv, message):
    flag_values = _sample_flags("--name=n", "--path=p", *argv)
    with pytest.raises(ValueError, match=message):
        config_flags.from_flags(Sample, flag_values)


def test_unsupported_annotation_and_missing_help_are_refused():
    with pytest.raises(TypeError, match="Sample.table"):
        config_flags.define_flags(Sample, flags.FlagValues())

    @dataclasses.dataclass
    class Undocumented:
        """No Attributes section."""

        size: int = 1

    with pytest.raises(ValueError, match="Undocumented.size"):
        config_flags.define_flags(Undocumented, flags.FlagValues())
    with pytest.raises(TypeError, match="not a dataclass"):
        config_flags.define_flags(Color, flags.FlagValues())


def _derived(config_cls: type, **kwargs) -> dict[str, tuple]:
    flag_values = flags.FlagValues()
    config_flags.define_flags(config_cls, flag_values, **kwargs)
    return {name: describe(flag_values[name]) for name in flag_values}


def test_configs_derive_the_old_flags():
    from beam_jobs.config import PreprocessConfig
    from model.label.config import LabelClipsConfig
    from model.train.config import TrainConfig

    assert list(_derived(TrainConfig).items()) == list(OLD_FLAGS["model.train.cli"].items())  # order: flags.txt
    old_preprocess = {k: v for k, v in OLD_FLAGS["beam_jobs.preprocess"].items() if k not in PREPROCESS_HAND_FLAGS}
    assert _derived(PreprocessConfig, exclude=("feature_set",)) == old_preprocess
    assert _derived(LabelClipsConfig) == OLD_FLAGS["model.label.cli"]


@pytest.mark.slow
@pytest.mark.parametrize("main", sorted(OLD_FLAGS))
def test_each_main_defines_its_old_flags(main):
    from tests.helpers import run_module

    proc = run_module("tests.pipeline.test_config_flags", main, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    derived = json.loads(proc.stdout.strip().splitlines()[-1])
    assert derived == _as_json(OLD_FLAGS[main])
    if main == "model.train.cli":
        assert list(derived) == list(OLD_FLAGS[main])  # flags.txt keeps its order


def test_config_from_flagfile_reads_the_cnn_preset():
    from model.train.config import TrainConfig, config_from_flagfile
    from pipeline.augment import AugmentConfig
    from tests.helpers import REPO

    config = config_from_flagfile(f"{REPO}/configs/cnn.flags", data_dir="d", model_dir="m")
    # The shipped model's recipe, every setting spelled out: a changed default shows here.
    assert config == TrainConfig(
        data_dir="d", model_dir="m", model="cnn", features="log_mel", epochs=30, batch_size=64, optimizer="adam",
        learning_rate=0.002, lr_schedule="cosine", warmup_epochs=1.0, seed=42,
        augment=AugmentConfig(gain_db=24.0, tilt_db=10.0, time_masks=2, freq_masks=2))
    # A fresh FlagValues each time (a reused one would refuse to define the flags again); overrides win.
    assert config_from_flagfile(f"{REPO}/configs/cnn.flags", data_dir="d", model_dir="m", epochs=2).epochs == 2


def test_config_from_flagfile_follows_includes_and_refuses_bad_presets(tmp_path, monkeypatch):
    from model.train.config import config_from_flagfile
    from tests.helpers import REPO

    monkeypatch.chdir(REPO)  # presets include each other by repo-relative path
    gpu = config_from_flagfile("configs/gpu.flags", data_dir="d", model_dir="m")
    assert (gpu.strategy, gpu.batch_size, gpu.epochs, gpu.augment.gain_db) == ("mirrored", 256, 30, 24.0)
    assert config_from_flagfile("configs/seed_conv1d.flags").augment is None  # --noaugment
    bad = tmp_path / "bad.flags"
    bad.write_text("--no_such_flag=1\n")
    with pytest.raises(flags.Error):
        config_from_flagfile(str(bad))
    bad.write_text("--noise_snr_db=30,5\n")
    with pytest.raises(ValueError, match="noise_snr_db"):
        config_from_flagfile(str(bad), data_dir="d", model_dir="m")


if __name__ == "__main__":  # one main's key flags as JSON, for test_each_main_defines_its_old_flags
    print(json.dumps(key_flags(sys.argv[1])))
