"""benchmarks.common: the bench corpus, the seed's blocks, the meters and the JSON line."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks import common
from pipeline import common_voice as cv
from pipeline import features


def test_corpus_present_needs_a_locale_with_validated_tsv(corpus_dir, tmp_path):
    assert common.corpus_present(corpus_dir)
    assert not common.corpus_present(str(tmp_path))  # empty
    assert not common.corpus_present(str(tmp_path / "absent"))


def test_real_clips_are_balanced_one_per_speaker_and_copied_into_a_readable_corpus(corpus_dir, tmp_path):
    clips = common.pick_real_clips(corpus_dir, 8)
    assert [c.label for c in clips] == [features.MALE] * 4 + [features.FEMALE] * 4
    assert len({c.speaker_id for c in clips}) == 8
    locale_dir = common.write_corpus(str(tmp_path), clips)
    with open(os.path.join(locale_dir, cv.VALIDATED_TSV), encoding="utf-8", newline="") as f:
        parsed = list(cv.parse_validated_tsv(f, locale_dir))
    assert all(isinstance(c, cv.Clip) for c in parsed)
    assert [(c.speaker_id, c.label) for c in parsed] == [(c.speaker_id, c.label) for c in clips]
    for original, copy in zip(clips, parsed, strict=True):
        # A copy, not a symlink: the job rejects links that resolve outside the locale's clips/.
        assert not os.path.islink(copy.audio_path)
        with open(original.audio_path, "rb") as a, open(copy.audio_path, "rb") as b:
            assert a.read() == b.read()


@pytest.mark.slow  # the generated_clips fixture writes a 48 kHz MP3 corpus (~5 s)
def test_load_clips_generates_good_clips_without_a_corpus(generated_clips):
    assert sorted(c.label for c in generated_clips) == [features.MALE] * 6 + [features.FEMALE] * 6
    assert all(os.path.getsize(c.audio_path) > 10_000 for c in generated_clips)  # none of the corpus's bad rows


@pytest.mark.parametrize("frames, filled", [(310, 3), (300, 2)])
def test_seed_blocks_cut_like_the_article(frames, filled):
    fs = features.STFT_SEED
    wave = np.random.default_rng(0).normal(size=fs.frame_length + (frames - 1) * fs.frame_step).astype(np.float32)
    blocks = common.seed_blocks(wave, fs.sample_rate)
    assert blocks.shape == (frames // fs.block_frames, *fs.block_shape)
    nonzero = [bool(np.any(b)) for b in blocks]
    # The article's loop stops one block early when the frames divide evenly: that block stays zero.
    assert nonzero == [True] * filled + [False] * (len(blocks) - filled)


def test_held_out_clips_are_located_in_the_sources(log_mel_data, corpus_dir):
    clips, sources = common.held_out_clips(log_mel_data, features.TRAIN)
    assert clips and set(clips.values()) == {features.MALE, features.FEMALE}
    paths = [common.locate(clip_id, sources) for clip_id in clips]
    assert all(p is not None and p.startswith(corpus_dir) and os.path.isfile(p) for p in paths)
    assert common.locate("en/not_there.mp3", sources) is None


def test_tree_memory_sums_children():
    code = "import time; x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {code!r}])"])
    with common.TreeMemory(parent.pid, interval_s=0.05) as memory:
        parent.wait()
        time.sleep(0.05)
    assert memory.peak_bytes > 200 * 2**20  # the grandchild's 200 MiB is counted
    assert memory.peak_child_bytes > 200 * 2**20 > memory.peak_root_bytes  # and is a child's, not the root's


def test_tree_memory_keeps_the_most_disk_seen_in_the_watched_directories(tmp_path):
    spill = tmp_path / "_spill-1"
    code = (f"import os, time; p = {str(spill / 'a')!r}; os.makedirs(os.path.dirname(p)); "
            "open(p, 'wb').write(b'x' * 3_000_000); time.sleep(0.5); os.remove(p); time.sleep(0.3)")
    (tmp_path / "other").write_bytes(b"y" * 5_000_000)  # not a watched directory
    child = subprocess.Popen([sys.executable, "-c", code])
    with common.TreeMemory(child.pid, interval_s=0.05, disk_root=str(tmp_path), disk_prefix="_spill-") as memory:
        child.wait()
    assert memory.peak_disk_bytes == 3_000_000


def test_tree_memory_finds_spill_directories_inside_windows(tmp_path):
    window = tmp_path / "_window-0000-of-0002"
    (window / "_spill-a").mkdir(parents=True)
    (window / "_spill-a" / "x").write_bytes(b"x" * 2_000)
    (window / "train-00000-of-00001.tfrecord").write_bytes(b"y" * 9_000)  # a shard, not spill
    (tmp_path / "_spill-b").mkdir()
    (tmp_path / "_spill-b" / "z").write_bytes(b"z" * 500)
    flat = common.TreeMemory(os.getpid(), disk_root=str(tmp_path), disk_prefix="_spill-")
    nested = common.TreeMemory(os.getpid(), disk_root=str(tmp_path), disk_prefix="_spill-", nested_prefix="_window-")
    assert flat._disk() == 500 and nested._disk() == 2_500


def test_print_json_rounds_top_level_floats_and_writes_numpy_scalars(capsys):
    common.print_json({"a": 1.23456, "b": np.float32(0.5), "c": {"d": 1.23456}, "e": True}, digits=2)
    common.print_json([1.23456])
    first, second = capsys.readouterr().out.splitlines()
    assert json.loads(first) == {"a": 1.23, "b": 0.5, "c": {"d": 1.23456}, "e": True}
    assert json.loads(second) == [1.23456]


def test_importing_a_benchmark_defines_no_flags():
    # Tests import benchmarks beside the mains (model.train defines --seed too): a benchmark's flags must be
    # defined only when it runs, by its define_flags().
    import importlib
    import pkgutil

    from absl import flags

    import benchmarks

    for module in pkgutil.iter_modules(benchmarks.__path__):
        name = f"benchmarks.{module.name}"
        imported = importlib.import_module(name)
        assert not flags.FLAGS.flags_by_module_dict().get(name), f"importing {name} defined flags"
        if hasattr(imported, "main"):
            assert hasattr(imported, "define_flags"), f"{name} has a main but no define_flags"


def test_named_exports_keep_the_order_and_refuse_a_spec_without_a_name_or_a_name_twice():
    from absl import app

    assert common.named_exports(["a=/x", "b=/y=z"]) == {"a": "/x", "b": "/y=z"}
    assert list(common.named_exports(["b=1", "a=2"])) == ["b", "a"]
    for specs in (["/just/a/path"], ["=/x"], ["a=/x", "a=/y"]):
        with pytest.raises(app.UsageError, match="--model="):
            common.named_exports(specs)


def test_the_peer_answers_by_path_and_a_missing_answer_or_path_is_nan(tmp_path, monkeypatch):
    # A stand-in peer speaking ina_peer.py's protocol: one JSON line per input path, any order, some unanswered.
    script = tmp_path / "peer.py"
    script.write_text(
        "import json, sys\n"
        "paths = [line.strip() for line in sys.stdin if line.strip()]\n"
        "for path in reversed(paths):\n"
        "    p = None if 'bad' in path else (0.9 if 'f' in path else 0.2)\n"
        "    print(json.dumps({'path': path, 'p_female': p}))\n")
    monkeypatch.setattr(common, "PEER_PYTHON", sys.executable)
    monkeypatch.setattr(common, "PEER_SCRIPT", str(script))
    p = common.peer_scores(["f.wav", "m.wav", "bad.wav", None])
    np.testing.assert_array_equal(p[:2], [0.9, 0.2])
    assert np.isnan(p[2]) and np.isnan(p[3])


def test_a_failing_peer_is_an_error_with_its_own_words(tmp_path, monkeypatch):
    script = tmp_path / "peer.py"
    script.write_text("import sys\nsys.exit('no weights in KERAS_HOME')\n")
    monkeypatch.setattr(common, "PEER_PYTHON", sys.executable)
    monkeypatch.setattr(common, "PEER_SCRIPT", str(script))
    with pytest.raises(RuntimeError, match="no weights in KERAS_HOME"):
        common.peer_scores(["a.wav"])
