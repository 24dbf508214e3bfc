"""Helpers the test modules share (fixtures live in conftest.py; import these, never conftest)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing.test_pipeline import TestPipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]
MULTI_PROCESS_BEAM = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
TEST_RATE = 16000  # the generated test corpus's MP3 rate (Common Voice's is 48 kHz): smaller fixtures


def generated_voice(male: bool, seconds: float, seed: int, rate: int = TEST_RATE) -> np.ndarray:
    """A float32 voice of the built-in synthesiser (``beam_jobs.sample_corpus``): speaker and audio seeded by ``seed``."""
    from beam_jobs import sample_corpus

    rng = np.random.default_rng(seed)
    return sample_corpus.synthesize(sample_corpus.make_speaker(rng, male, seed), seconds, rng, rate).astype(np.float32)


def stand_in_ina_cnn(seed: int = 0):
    """A small tf_keras CNN with ina's interface ([n, 68, 24] -> softmax [n, 2]: female, male) and three weighted
    layers (``ina_conv``, ``ina_bn``, ``ina_out``) to freeze or train: the wheel's CNN where its weights don't matter."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((68, 24))
    x = keras.layers.Reshape((68, 24, 1))(inputs)
    x = keras.layers.Conv2D(4, 3, name="ina_conv")(x)
    x = keras.layers.BatchNormalization(name="ina_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="ina_out")(x))


def make_test_pipeline() -> TestPipeline:
    """A TestPipeline on the in-process FnApiRunner (no Prism download attempt)."""
    return TestPipeline(runner=fn_runner.FnApiRunner(), blocking=True)


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    """os.environ with ``env`` merged over it and the repository on PYTHONPATH (a child imports this checkout).

    A ``PYTHONPATH`` in ``env`` comes first (``without_tensorflow``'s directory), the repository after it.
    """
    env = dict(env or {})
    path = os.pathsep.join(p for p in (env.pop("PYTHONPATH", ""), REPO) if p)
    return {**os.environ, **env, "PYTHONPATH": path}


def without_tensorflow(directory) -> dict[str, str]:
    """An ``env`` for ``run_module`` in which no process, spawned workers included, can import TensorFlow.

    Writes a ``sitecustomize.py`` into ``directory`` (every Python process on the path runs it at start-up)
    that refuses the import; the returned variables put it on ``PYTHONPATH``.
    """
    with open(os.path.join(directory, "sitecustomize.py"), "w") as f:
        f.write("import importlib.abc, sys\n"
                "class _Refuse(importlib.abc.MetaPathFinder):\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name.split('.')[0] == 'tensorflow':\n"
                "            raise ImportError(f'{name} refused: this process must not need TensorFlow')\n"
                "sys.meta_path.insert(0, _Refuse())\n")
    return {"PYTHONPATH": str(directory)}


def run_module(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python -m <args>`` from the repository root, as a user would.

    Args:
      *args: the module and its arguments.
      env: variables set for the child, over this process's environment.
      timeout: seconds before the child is killed (``subprocess.TimeoutExpired``).

    Returns:
      The finished process, stdout and stderr captured as text.
    """
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=_child_env(env), capture_output=True,
                          text=True, timeout=timeout)


def run_python(code: str, *, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs ``python -c code`` from the repository root.

    Args:
      code: the program.
      env: variables set for the child, over this process's environment.
      timeout: seconds before the child is killed (``subprocess.TimeoutExpired``).

    Returns:
      The finished process, stdout and stderr captured as text.
    """
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_child_env(env), capture_output=True,
                          text=True, timeout=timeout)


def with_id3_picture(mp3: bytes, picture_bytes: int = 500_000, seed: int = 0) -> bytes:
    """``mp3`` behind an ID3v2.3 tag holding an embedded picture (APIC) of ``picture_bytes`` random bytes.

    Cover art is common in MP3s found in the wild; libsndfile's header
    estimate counts such a tag as audio.
    """
    import numpy as np

    picture = np.random.default_rng(seed).integers(0, 256, picture_bytes, dtype=np.uint8).tobytes()
    body = b"\x00image/jpeg\x00\x03\x00" + picture  # encoding, MIME type, picture type (cover), description
    frame = b"APIC" + len(body).to_bytes(4, "big") + b"\x00\x00" + body
    size = len(frame)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + syncsafe + frame + mp3


def without_xing_frame(mp3: bytes) -> bytes:
    """An MPEG-2 layer III stream without its first frame, the Xing/Info frame that holds the exact length.

    Many MP3s carry none (Common Voice's among them); libsndfile then estimates the length from the
    file's size, and counts whatever precedes the audio (an ID3v2 tag) as audio too.
    """
    assert mp3[:2] == b"\xff\xf3" and b"Xing" in mp3[:64], "expected libsndfile's MPEG-2 layer III with Xing"
    bitrates = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)  # kbit/s, MPEG-2 layer III
    rates = (22050, 24000, 16000)
    header = mp3[2]
    length = 72 * bitrates[header >> 4] * 1000 // rates[(header >> 2) & 3] + ((header >> 1) & 1)
    assert mp3[length:length + 2] == b"\xff\xf3", "the next frame must follow"
    return mp3[length:]
