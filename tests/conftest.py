"""Shared fixtures: every fixture is generated here, nothing is read from ../shared."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from beam_jobs import sample_corpus  # noqa: E402
from tests.helpers import IN_PROCESS_BEAM, TEST_RATE  # noqa: E402


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> str:
    """A tiny two-locale corpus (both schemas) with every kind of bad row."""
    root = tmp_path_factory.mktemp("corpus")
    sample_corpus.make_corpus(
        str(root), speakers_per_gender=4, clips_per_speaker=2, seed=1,
        seconds_range=(1.5, 3.0), sample_rate=TEST_RATE,
    )
    return str(root)


def _preprocess(corpus: str, out: str, feature_set, **overrides) -> str:
    from beam_jobs import job

    # Seed 11 puts 4 of corpus_dir's speakers of each gender in train and 2 in validation and in test: the job
    # refuses data with a split that misses a gender (seed 3 left test without a male voice).
    settings = dict(split_fractions=(0.5, 0.25, 0.25), max_blocks_per_clip=4, seed=11, target_shard_mb=0.1)
    settings.update(overrides)
    job.run(job.PreprocessConfig(cv_dirs=(corpus,), output_dir=out, feature_set=feature_set, **settings),
            IN_PROCESS_BEAM)
    return out


@pytest.fixture(scope="session")
def log_mel_data(corpus_dir, tmp_path_factory) -> str:
    """The Beam job's log-mel output for ``corpus_dir``, several train shards."""
    from pipeline import features

    return _preprocess(corpus_dir, str(tmp_path_factory.mktemp("log_mel")), features.LOG_MEL)


@pytest.fixture(scope="session")
def stft_seed_data(corpus_dir, tmp_path_factory) -> str:
    """The Beam job's ``stft_seed`` output for ``corpus_dir`` (the seed models' features)."""
    from pipeline import features

    return _preprocess(corpus_dir, str(tmp_path_factory.mktemp("stft_seed")), features.STFT_SEED,
                       max_blocks_per_clip=2, target_shard_mb=1.0)


@pytest.fixture(scope="session")
def log_mel_ina_data(corpus_dir, tmp_path_factory) -> str:
    """The Beam job's ``log_mel_ina`` output for ``corpus_dir`` (the fused model's features)."""
    from pipeline import features

    return _preprocess(corpus_dir, str(tmp_path_factory.mktemp("log_mel_ina")), features.LOG_MEL_INA,
                       max_blocks_per_clip=2)


@pytest.fixture(scope="session")
def ina_wheel(tmp_path_factory) -> str:
    """The pinned inaSpeechSegmenter 0.6.8 wheel, a build-time dependency: fetched with ``pip download --no-deps``
    (the package index is reachable in CI); the test is skipped, saying so, where it cannot be had."""
    directory = tmp_path_factory.mktemp("ina_wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(directory),
                           "inaSpeechSegmenter==0.6.8"], capture_output=True, text=True, timeout=300)
    wheels = [p for p in directory.iterdir() if p.suffix == ".whl"]
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"inaSpeechSegmenter 0.6.8 could not be downloaded: {proc.stderr.strip()[-300:]}")
    return str(wheels[0])


@pytest.fixture(scope="session")
def trained_run(log_mel_data, tmp_path_factory) -> str:
    """model_dir of a short cnn run on the generated corpus, with export/ (SavedModel + LiteRT)."""
    from model import workflow
    from model.train import config as config_lib

    model_dir = str(tmp_path_factory.mktemp("trained_run"))
    workflow.run(config_lib.TrainConfig(data_dir=log_mel_data, model_dir=model_dir, epochs=4, batch_size=16,
                                           strategy="cpu", export=True))
    import tf_keras as keras

    keras.mixed_precision.set_global_policy("float32")
    return model_dir


# Tests that need these fixtures are slow by construction (a trained model, the 48 kHz data, a whole
# job run over the fuzz corpus): `make test-fast` skips them, `make test` and CI run them.
SLOW_FIXTURES = frozenset({"trained_run", "stft_seed_data", "fuzzed", "ina_wheel", "log_mel_ina_data"})


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
