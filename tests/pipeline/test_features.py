import pytest

from pipeline import features


def test_feature_sets_are_registered_by_name():
    assert features.get_feature_set("log_mel") is features.LOG_MEL
    assert features.get_feature_set("stft_seed") is features.STFT_SEED


def test_unknown_feature_set_names_the_known_ones():
    with pytest.raises(ValueError, match="log_mel"):
        features.get_feature_set("mfcc")


def test_stft_seed_matches_the_article():
    fs = features.STFT_SEED
    assert fs.sample_rate == 48000 and fs.frame_length == 1024 and fs.frame_step == 384
    assert fs.block_shape == (100, 513)
    assert fs.block_seconds == pytest.approx(0.8)


def test_round_trip_through_metadata_dict():
    d = features.LOG_MEL.to_dict()
    assert d["block_shape"] == [96, 64] and d["dtype"] == "float32"
    assert features.FeatureSet.from_dict(d) == features.LOG_MEL


def test_shard_names_match_their_pattern():
    import fnmatch

    name = features.shard_name(features.TRAIN, 3, 16)
    assert name == "train-00003-of-00016.tfrecord"
    assert fnmatch.fnmatch(name, features.shard_pattern(features.TRAIN))
    assert not fnmatch.fnmatch(name, features.shard_pattern(features.TEST))


def test_feature_kind_is_typed_and_stored_as_its_string():
    assert features.LOG_MEL.kind is features.FeatureKind.LOG_MEL and features.LOG_MEL.is_log_mel
    assert not features.STFT_SEED.is_log_mel
    d = features.STFT_SEED.to_dict()
    assert type(d["kind"]) is str and d["kind"] == "stft_abs_real"
    assert features.FeatureSet.from_dict(d).kind is features.FeatureKind.STFT_ABS_REAL
    with pytest.raises(ValueError, match="mfcc"):
        features.FeatureSet.from_dict({**d, "kind": "mfcc"})


def test_record_keys_are_listed_once():
    keys = [f.key for f in features.RECORD_FIELDS]
    assert len(set(keys)) == len(keys) == 8
    assert keys[:2] == [features.BLOCK_KEY, features.LABEL_KEY]
    assert dict(features.RECORD_KEYS) == {k: k for k in keys}
    assert set(features.INFO_KEYS) == set(keys) - {features.BLOCK_KEY, features.LABEL_KEY}
    assert all(f.dtype in ("bytes", "int64") for f in features.RECORD_FIELDS)
