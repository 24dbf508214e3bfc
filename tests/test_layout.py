"""The layout reads as the data flow: each stage imports only what is upstream of it (WORKSPACE.md's map).

Every ``import`` of the project's own packages, at any depth of a module, is
checked against ``ALLOWED``; the predictor and the API are imported with
TensorFlow, Beam and scikit-learn made unimportable, and classify a clip.
"""

from __future__ import annotations

import ast
import os

import pytest

from tests.helpers import REPO, run_python

# stage -> the stages its library modules may import (its own included). The order of the rows is the flow.
ALLOWED = {
    "pipeline": {"pipeline"},
    "beam_jobs": {"pipeline", "beam_jobs"},
    "model.train": {"pipeline", "model.train"},
    "model.evaluate": {"pipeline", "model.train", "model.evaluate"},
    "model.predict": {"pipeline", "model.predict"},
    "model.export": {"pipeline", "model.train", "model.predict", "model.export"},
    "model.calibrate": {"pipeline", "model.predict", "model.calibrate"},
    "model.workflow": {"pipeline", "model.train", "model.evaluate", "model.export", "model.calibrate"},
    "model.label": {"pipeline", "beam_jobs", "model.predict", "model.label"},
    "voicegender": {"pipeline", "model.predict", "voicegender"},
}
# A stage's command (its cli.py / __main__.py, imported by nothing) may also run the stages that finish it.
COMMAND_EXTRA = {"model.train": {"model.workflow"}, "model.export": {"model.calibrate"}}
PACKAGES = ("pipeline", "beam_jobs", "model", "voicegender")
# What the predictor and the API must never need.
HEAVY = ("tensorflow", "tf_keras", "apache_beam", "sklearn", "matplotlib", "scipy", "threadpoolctl", "parselmouth")


def stage_of(module: str) -> str | None:
    """The stage a dotted module name belongs to (None: not the project's)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] == "model":
        return ".".join(parts[:2]) if len(parts) > 1 else "model"
    return parts[0]


def project_modules() -> list[tuple[str, str]]:
    """(dotted name, path) of every module of the project's packages."""
    found = []
    for package in PACKAGES:
        for root, dirs, files in os.walk(os.path.join(REPO, package)):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "pretrained")]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    relative = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found.append((relative.removesuffix(".__init__"), path))
    return sorted(found)


def imported_modules(path: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names, anywhere in the file (``from a import b``: a.b)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations() -> list[str]:
    problems = []
    for module, path in project_modules():
        stage = stage_of(module)
        if stage == "model":
            continue  # model/__init__.py: the package's docstring only
        allowed = set(ALLOWED[stage])
        if module.rsplit(".", 1)[-1] in ("cli", "__main__"):
            allowed |= COMMAND_EXTRA.get(stage, set())
        for name in sorted(imported_modules(path)):
            target = stage_of(name)
            if target is None or target == "model" or target in allowed:
                continue
            problems.append(f"{module} ({stage}) imports {name} ({target})")
    return problems


def test_every_stage_imports_only_what_is_upstream_of_it():
    assert violations() == []
    assert set(ALLOWED) == {stage_of(m) for m, _ in project_modules()} - {"model"}  # every stage is in the map


def test_the_rule_catches_an_import_against_the_flow(tmp_path, monkeypatch):
    bad = tmp_path / "pipeline" / "upstream.py"
    bad.parent.mkdir()
    bad.write_text("from model.predict import classifier\n\ndef f():\n    import beam_jobs.read\n")
    assert imported_modules(str(bad)) == {"model.predict", "model.predict.classifier", "beam_jobs.read"}
    monkeypatch.setattr("tests.test_layout.project_modules", lambda: [("pipeline.upstream", str(bad))])
    assert violations() == ["pipeline.upstream (pipeline) imports beam_jobs.read (beam_jobs)",
                            "pipeline.upstream (pipeline) imports model.predict (model.predict)",
                            "pipeline.upstream (pipeline) imports model.predict.classifier (model.predict)"]


BLOCK_HEAVY = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    f"        if name.split('.')[0] in {HEAVY!r}:\n"
    "            raise ImportError(f'{name} is blocked: the predictor must not need it')\n"
    "sys.meta_path.insert(0, Block())\n"
)


@pytest.mark.parametrize("module", sorted(m for m, _ in project_modules()
                                          if stage_of(m) in ("model.predict", "voicegender")
                                          and not m.endswith("__main__")))
def test_the_predictor_and_the_api_import_without_tensorflow_beam_or_sklearn(module):
    proc = run_python(BLOCK_HEAVY + f"import {module}\n"
                      f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_the_api_classifies_a_clip_with_tensorflow_unimportable(tmp_path):
    import numpy as np
    import soundfile

    from beam_jobs import sample_corpus

    rng = np.random.default_rng(5)
    path = tmp_path / "voice.wav"
    soundfile.write(path, sample_corpus.synthesize(sample_corpus.make_speaker(rng, True, 0), 2.5, rng, 16000), 16000)
    proc = run_python(BLOCK_HEAVY + "import voicegender\n"
                      f"r = voicegender.load(vad='none').classify({str(path)!r})\n"
                      "print(r.gender in ('male', 'female'), 0 <= r.p_female <= 1, round(r.duration_s, 1))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "True True 2.5"
