"""pipeline.metadata: the typed view of metadata.json and the training statistics."""

import json

import numpy as np
import pytest

from pipeline import features, metadata


def _metadata_dict(normalization=True) -> dict:
    counts = {"clips": {"male": 2, "female": 3}, "blocks": {"male": 5, "female": 7},
              "speakers": {"male": 1, "female": 1}, "audio_seconds": {"male": 4.0, "female": 6.5}}
    d = {"format_version": features.FORMAT_VERSION, "feature_set": features.LOG_MEL.to_dict(),
         "splits": {features.TRAIN: counts}, "sources": ["/cv/en"], "rejected": {"silent": 1}}
    if normalization:
        d["normalization"] = {"mean": [0.5] * features.LOG_MEL.num_bins, "std": [0.0] * features.LOG_MEL.num_bins}
    return d


def test_metadata_is_read_typed(tmp_path):
    (tmp_path / features.METADATA_FILENAME).write_text(json.dumps(_metadata_dict()))
    meta = metadata.read_metadata(str(tmp_path))
    assert meta.feature_set == features.LOG_MEL
    assert meta.blocks(features.TRAIN) == 12 and meta.blocks(features.TEST) == 0
    assert meta.splits[features.TRAIN].audio_seconds["female"] == 6.5
    assert meta.sources == ("/cv/en",) and meta.raw["rejected"] == {"silent": 1}
    assert metadata.check_compatible(meta, features.LOG_MEL) == features.LOG_MEL
    norm = metadata.Normalizer.from_metadata(meta)
    assert np.all(norm.mean == 0.5) and np.all(norm.std == 1e-3)  # a constant bin never divides by zero


def test_missing_statistics_or_fields_are_clear_errors(tmp_path):
    meta = metadata.Metadata.from_dict(_metadata_dict(normalization=False))
    with pytest.raises(ValueError, match="no normalization statistics"):
        metadata.Normalizer.from_metadata(meta)
    (tmp_path / features.METADATA_FILENAME).write_text(json.dumps({"splits": {}}))
    with pytest.raises(ValueError, match="metadata.json: not a voicegender metadata file"):
        metadata.read_metadata(str(tmp_path))
    (tmp_path / features.METADATA_FILENAME).write_text("{truncated")
    with pytest.raises(ValueError, match="metadata.json: not JSON"):
        metadata.read_metadata(str(tmp_path))


def test_bins_a_model_standardises_itself_are_left_raw(tmp_path):
    """ina's CNN standardises each patch itself: the training statistics touch only log_mel's bins."""
    fs = features.LOG_MEL_INA
    d = _metadata_dict()
    d["feature_set"] = fs.to_dict()
    d["normalization"] = {"mean": [2.0] * fs.num_bins, "std": [4.0] * fs.num_bins}
    (tmp_path / features.METADATA_FILENAME).write_text(json.dumps(d))
    norm = metadata.Normalizer.from_metadata(metadata.read_metadata(str(tmp_path)))
    np.testing.assert_array_equal(norm.mean, [2.0] * 64 + [0.0] * 24)
    np.testing.assert_array_equal(norm.std, [4.0] * 64 + [1.0] * 24)
    assert features.INA_MEL.normalized_bins == 0 and features.LOG_MEL.normalized_bins == 64
