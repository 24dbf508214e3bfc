"""A trained and exported run, shared by the evaluation, export and predict tests."""

import pytest
import tf_keras as keras

from model import config as config_lib
from model import train_lib


@pytest.fixture(scope="session")
def trained_run(log_mel_data, tmp_path_factory) -> str:
    """model_dir of a short cnn run on the generated corpus, with export/ (SavedModel + LiteRT)."""
    model_dir = str(tmp_path_factory.mktemp("trained_run"))
    train_lib.train(config_lib.TrainConfig(data_dir=log_mel_data, model_dir=model_dir, epochs=4, batch_size=16,
                                           strategy="cpu", export=True))
    keras.mixed_precision.set_global_policy("float32")
    return model_dir
