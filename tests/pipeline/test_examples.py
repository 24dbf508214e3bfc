import numpy as np
import tensorflow as tf

from pipeline import examples, features, records

FS = features.LOG_MEL


def make_records(n: int):
    rng = np.random.default_rng(0)
    blocks = rng.standard_normal((n, *FS.block_shape)).astype(np.float32)
    encoded = [
        records.encode_block(blocks[i], i % 2, f"en/c{i}.mp3", f"spk{i}", i, age="twenties", accent="us")
        for i in range(n)
    ]
    return blocks, encoded


def test_round_trip_eager_single_and_batched():
    blocks, encoded = make_records(3)
    one = examples.parse_blocks(tf.constant(encoded[1]), FS)
    np.testing.assert_array_equal(one[features.BLOCK_KEY].numpy(), blocks[1])
    assert one[features.LABEL_KEY].numpy() == 1
    assert one[features.CLIP_ID_KEY].numpy() == b"en/c1.mp3"
    batch = examples.parse_blocks(tf.constant(encoded), FS)
    np.testing.assert_array_equal(batch[features.BLOCK_KEY].numpy(), blocks)
    assert batch[features.BLOCK_INDEX_KEY].numpy().tolist() == [0, 1, 2]
    assert batch[features.SPEAKER_ID_KEY].numpy().tolist() == [b"spk0", b"spk1", b"spk2"]
    assert batch[features.AGE_KEY].numpy()[0] == b"twenties"


def test_round_trip_inside_dataset_map():
    blocks, encoded = make_records(4)
    ds = tf.data.Dataset.from_tensor_slices(encoded).batch(2).map(lambda s: examples.parse_blocks(s, FS))
    parsed = list(ds)
    assert parsed[0][features.BLOCK_KEY].shape == (2, *FS.block_shape)
    np.testing.assert_array_equal(np.concatenate([p[features.BLOCK_KEY].numpy() for p in parsed]), blocks)


def test_records_hold_exactly_the_record_fields_and_defaults_fill_in():
    _, encoded = make_records(1)
    example = tf.train.Example.FromString(encoded[0])
    assert sorted(example.features.feature) == sorted(f.key for f in features.RECORD_FIELDS)
    assert set(examples.feature_spec()) == set(features.RECORD_KEYS)
    # A record without the optional fields (an older writer's) parses with their defaults.
    del example.features.feature[features.AGE_KEY]
    del example.features.feature[features.AUGMENTATION_KEY]  # shards written before augmentation existed
    parsed = examples.parse_blocks(tf.constant([example.SerializeToString()]), FS)
    assert parsed[features.AGE_KEY].numpy().tolist() == [b""]
    assert parsed[features.AUGMENTATION_KEY].numpy().tolist() == [b""]
    marked = records.encode_block(np.zeros(FS.block_shape, np.float32), 0, "en/c#aug0", "s", 0,
                                  augmentation="f0x1.30_tilt3_gain6_tempo1.10")
    assert examples.parse_blocks(tf.constant(marked), FS)[features.AUGMENTATION_KEY].numpy() == (
        b"f0x1.30_tilt3_gain6_tempo1.10")
