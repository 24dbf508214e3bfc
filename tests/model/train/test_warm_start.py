"""The fusion's cnn branch from an export of ours: its weights by name, its statistics checked."""

import json
import os
import shutil

import numpy as np
import pytest

from model.predict import export_format
from model.train import warm_start
from pipeline import features
from pipeline.metadata import Metadata, Normalizer

SHIPPED = export_format.PRETRAINED_DIR


def _shipped_statistics() -> Normalizer:
    path = os.path.join(SHIPPED, features.TRAINING_METADATA_FILENAME)
    return Normalizer.from_metadata(Metadata.from_dict(json.load(open(path)), path))


def test_the_shipped_statistics_pass_and_the_fused_datas_log_mel_part_is_what_is_compared():
    shipped = _shipped_statistics()
    warm_start.check_statistics(SHIPPED, shipped)
    ina_bins = features.INA_MEL.num_bins  # a log_mel_ina run's normalizer: ina's bins are the identity
    fused = Normalizer(np.concatenate([shipped.mean, np.zeros(ina_bins, np.float32)]),
                       np.concatenate([shipped.std * 1.001, np.ones(ina_bins, np.float32)]))
    warm_start.check_statistics(SHIPPED, fused)


@pytest.mark.parametrize("change, message", [
    (lambda n: Normalizer(n.mean + 0.5, n.std), "mean differs by up to 0.5"),
    (lambda n: Normalizer(n.mean, n.std * 1.2), "std by up to 20.0%"),
])
def test_other_statistics_are_refused_naming_the_difference(change, message):
    with pytest.raises(ValueError, match=message):
        warm_start.check_statistics(SHIPPED, change(_shipped_statistics()))


def test_an_export_without_its_training_metadata_or_not_a_cnn_is_refused(tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(SHIPPED, bare)
    os.remove(bare / features.TRAINING_METADATA_FILENAME)
    with pytest.raises(ValueError, match=f"has no {features.TRAINING_METADATA_FILENAME}"):
        warm_start.check_statistics(str(bare), _shipped_statistics())
    with pytest.raises(ValueError, match="not an export of ours"):
        warm_start.cnn_from_export(str(tmp_path / "nothing"))


def test_an_export_of_a_cnn_with_more_weights_is_refused(tmp_path):
    # A cnn_envelope holds every cnn weight by name and shape, and a lifter besides: as a cnn it would lose it.
    # (That the branch answers as the shipped export is tests/model/export/test_fused.py's check, through fused.)
    import tensorflow as tf

    from model.train import models

    module = tf.Module()
    module.model = models.cnn_envelope(features.LOG_MEL.block_shape)
    tf.saved_model.save(module, str(tmp_path / "envelope"))
    with pytest.raises(ValueError, match="not an export of a `cnn` on log_mel \\(but has cepstral_lifter"):
        warm_start.cnn_from_export(str(tmp_path / "envelope"))
    assert len(warm_start.cnn_from_export(SHIPPED).weights) == len(models.cnn(features.LOG_MEL.block_shape).weights)
