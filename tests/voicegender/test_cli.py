"""The ``voicegender`` command: every subcommand is its stage's main; a missing extra is one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO, run_python
from voicegender import cli


def _voicegender(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicegender.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**__import__("os").environ, "PYTHONPATH": REPO})


def test_usage_lists_every_subcommand():
    proc = _voicegender("--help")
    assert proc.returncode == 0
    for name in ("predict", "preprocess", "train", "evaluate", "label", "export", "calibrate"):
        assert f"  {name} " in proc.stdout
    unknown = _voicegender("classify")
    assert unknown.returncode == 2 and unknown.stderr.strip() == (
        "voicegender: error: unknown subcommand 'classify'; choose one of " + ", ".join(cli.SUBCOMMANDS))


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_each_subcommand_is_its_mains_help(name):
    import ast
    import importlib.util

    proc = _voicegender(name, "--help")
    assert proc.returncode == 1, proc.stderr[-2000:]  # absl's --help status
    origin = importlib.util.find_spec(cli.SUBCOMMANDS[name].module).origin  # not imported: mains share flag names
    main_doc = ast.get_docstring(ast.parse(open(origin).read()))
    assert proc.stdout.startswith(main_doc.strip().splitlines()[0])  # the stage's own docstring
    assert f"\nvoicegender {name}:\n" in proc.stdout  # and its flags
    flag = {"predict": "--vad", "preprocess": "--cv_dir", "train": "--model", "evaluate": "--split",
            "label": "--score_labelled", "export": "--calibrate", "calibrate": "--folds"}[name]
    assert f"  {flag}:" in proc.stdout or f"  --[no]{flag[2:]}:" in proc.stdout  # a bool flag: --[no]name


def test_a_missing_extra_is_one_line():
    # Beam and TensorFlow made unimportable, as in a base install.
    proc = run_python(
        "import sys, importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n in ('tensorflow', 'apache_beam') else real(n, *a)\n"
        "from voicegender import cli\n"
        "sys.exit(cli.main(['voicegender', 'train', '--data_dir=d']))")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ('voicegender train: error: needs the [train] extra (tensorflow not installed): '
                                   'pip install "voicegender[train]"')


def test_predict_through_the_command(tmp_path):
    import numpy as np
    import soundfile

    from beam_jobs import sample_corpus

    rng = np.random.default_rng(2)
    path = tmp_path / "w.wav"
    soundfile.write(path, sample_corpus.synthesize(sample_corpus.make_speaker(rng, False, 1), 2.0, rng, 16000), 16000)
    proc = _voicegender("predict", "--format=csv", "--vad=none", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0].startswith("path,") and str(path) in proc.stdout
    missing = _voicegender("predict", str(tmp_path / "none.wav"))
    assert missing.returncode == 1 and "missing_file" in missing.stdout
