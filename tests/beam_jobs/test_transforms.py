"""Each PTransform under TestPipeline + assert_that; DoFns called directly after setup()."""

import collections
import os

import apache_beam as beam
import numpy as np
import pytest
import soundfile
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import balance
from beam_jobs.balance import BalanceBlocks, BalanceClips, KeptBlocks, keep_probabilities
from beam_jobs.decode import CopySettings, DecodeAudioFn, DecodedClip, evenly_spaced
from beam_jobs.read import CapClipsPerSpeaker, LimitClips, ReadClips, SplitBySpeaker
from beam_jobs.rejections import REJECTED
from beam_jobs.spill import SpillRef, read_blocks
from pipeline import audio, features, frontend, spectrogram
from pipeline import common_voice as cv
from tests.helpers import make_test_pipeline


def clip(i: int, speaker: str, label: int, locale: str = "en") -> cv.Clip:
    return cv.Clip(f"{locale}/{i}.mp3", f"/x/{locale}/clips/{i}.mp3", speaker, label, locale)


def test_read_clips_both_schemas_and_rejections(corpus_dir):
    with make_test_pipeline() as p:
        clips, rejected = p | ReadClips([corpus_dir])
        labels = clips | "Labels" >> beam.Map(lambda c: (c.locale, features.GENDER_NAMES[c.label]))
        counts = labels | beam.combiners.Count.PerElement()
        assert_that(
            counts,
            # 8 good clips per gender and locale, plus the labelled bad clips
            # (male: missing, empty, silent; female: corrupt, too short).
            equal_to([(("en", "male"), 11), (("en", "female"), 10), (("de", "male"), 11), (("de", "female"), 10)]),
            label="LabelledPerLocale",
        )
        reasons = rejected | beam.Map(lambda r: r.reason) | "CountReasons" >> beam.combiners.Count.PerElement()
        assert_that(
            reasons,
            equal_to([("gender_blank", 2), ("gender_other", 1), ("gender_do_not_wish_to_say", 1), ("malformed_row", 2)]),
            label="RowRejections",
        )


def test_read_clips_accepts_a_single_locale_dir(corpus_dir):
    with make_test_pipeline() as p:
        clips, _ = p | ReadClips([os.path.join(corpus_dir, "de")])
        assert_that(clips | beam.Map(lambda c: c.locale) | beam.Distinct(), equal_to(["de"]))


def test_cap_clips_per_speaker_and_limit():
    clips = [clip(i, f"s{i % 3}", 0) for i in range(30)]
    with make_test_pipeline() as p:
        capped = p | beam.Create(clips) | CapClipsPerSpeaker(4, seed=1)
        per_speaker = capped | beam.Map(lambda c: c.speaker_id) | beam.combiners.Count.PerElement()
        assert_that(per_speaker, equal_to([("s0", 4), ("s1", 4), ("s2", 4)]), label="Cap")
        limited = p | "More" >> beam.Create(clips) | LimitClips(7, seed=1)
        assert_that(limited | beam.combiners.Count.Globally(), equal_to([7]), label="Limit")


def test_split_by_speaker_is_disjoint():
    clips = [clip(i, f"s{i % 50}", i % 2) for i in range(500)]

    def check(pairs):
        splits_of = collections.defaultdict(set)
        for split, c in pairs:
            splits_of[c.speaker_id].add(split)
        assert len(pairs) == 500
        assert all(len(s) == 1 for s in splits_of.values()), "a speaker is in two splits"
        assert {s for v in splits_of.values() for s in v} == set(features.SPLITS)

    with make_test_pipeline() as p:
        keyed, rejected = p | beam.Create(clips) | SplitBySpeaker(3, (0.6, 0.2, 0.2))
        assert_that(keyed | beam.combiners.ToList(), lambda lists: check(lists[0]))
        assert_that(rejected, equal_to([]), label="NoRejections")


def test_official_splits_and_clips_in_none(tmp_path):
    locale = tmp_path / "en"
    locale.mkdir()
    header = "client_id\tpath\tgender\n"
    (locale / "validated.tsv").write_text(header)
    (locale / "train.tsv").write_text(header + "a\t0.mp3\tmale\n")
    (locale / "dev.tsv").write_text(header + "b\t1.mp3\tfemale\n")
    (locale / "test.tsv").write_text(header + "c\t2.mp3\tmale\n")
    clips = [clip(i, "abc"[i % 3], 0) for i in range(4)]
    with make_test_pipeline() as p:
        keyed, rejected = p | beam.Create(clips) | SplitBySpeaker(0, (0.8, 0.1, 0.1), [str(locale)])
        assert_that(
            keyed | beam.MapTuple(lambda s, c: (s, c.clip_id)),
            equal_to([("train", "en/0.mp3"), ("validation", "en/1.mp3"), ("test", "en/2.mp3")]),
        )
        assert_that(rejected | beam.Map(lambda r: (r.item, r.reason)),
                    equal_to([("en/3.mp3", "not_in_official_split")]), label="Rejected")


def test_keep_probabilities():
    p = keep_probabilities({"train/male": 400, "train/female": 100, "test/male": 10})
    assert p == {"train/male": 0.25, "train/female": 1.0, "test/male": 0.0}


def test_balance_clips_evens_genders_per_split():
    clips = [("train", clip(i, f"s{i}", features.MALE)) for i in range(4000)]
    clips += [("train", clip(10000 + i, f"f{i}", features.FEMALE)) for i in range(1000)]

    def check(counts):
        d = dict(counts)
        assert d["female"] == 1000
        assert abs(d["male"] - 1000) < 100  # binomial noise, ~3.5 sigma

    def check_dropped(dropped):
        # Every clip is either kept or listed with its reason: nothing vanishes.
        assert all(r.reason == balance.DROPPED_BY_CLIP_BALANCE and "split train: male clips" in r.detail
                   for r in dropped)
        assert dropped and all(int(r.item.split("/")[1].split(".")[0]) < 10000 for r in dropped)  # male ids

    with make_test_pipeline() as p:
        kept, dropped = p | beam.Create(clips) | BalanceClips(seed=0)
        counts = kept | beam.MapTuple(lambda s, c: features.GENDER_NAMES[c.label]) | beam.combiners.Count.PerElement()
        assert_that(counts | beam.combiners.ToList(), lambda lists: check(lists[0]))
        assert_that(dropped, check_dropped, label="Dropped")
        total = (kept, dropped) | beam.Flatten() | beam.combiners.Count.Globally()
        assert_that(total, equal_to([len(clips)]), label="Accounted")


def test_balance_blocks_evens_blocks_and_drops_emptied_clips():
    def item(i, label, n):
        # Spilled indices 0, 2, 4, ...: a kept block's slot is its position among them.
        return DecodedClip("train", clip(i, f"s{i}", label), tuple(range(0, 2 * n, 2)), 1.0, SpillRef(f"f{i}", 0, n))

    items = [item(i, features.MALE, 6) for i in range(300)] + [item(1000 + i, features.FEMALE, 2) for i in range(300)]

    def check(lists):
        out = lists[0]
        blocks = collections.Counter()
        for c in out:
            assert isinstance(c, KeptBlocks) and len(c.block_indices) > 0
            assert set(c.block_indices) <= set(range(0, 12 if c.clip.label == features.MALE else 4, 2))
            assert c.slots == tuple(i // 2 for i in c.block_indices)
            assert c.spill.path == f"f{c.clip.clip_id.split('/')[1].split('.')[0]}"
            blocks[c.clip.label] += len(c.block_indices)
        assert blocks[features.FEMALE] == 600
        assert abs(blocks[features.MALE] - 600) < 90

    def check_emptied(emptied):
        assert emptied and all(r.reason == balance.DROPPED_BY_BLOCK_BALANCE for r in emptied)

    with make_test_pipeline() as p:
        kept, emptied = p | beam.Create(items) | BalanceBlocks(seed=0)
        assert_that(kept | beam.combiners.ToList(), check)
        assert_that(emptied, check_emptied, label="Emptied")
        total = (kept, emptied) | beam.Flatten() | beam.combiners.Count.Globally()
        assert_that(total, equal_to([len(items)]), label="Accounted")


def write_audio(path, data, rate, fmt="MP3"):
    soundfile.write(path, data, rate, format=fmt, subtype="MPEG_LAYER_III" if fmt == "MP3" else None)


def test_decode_audio_fn_after_setup_spills_blocks_and_rejects_bad_clips(tmp_path):
    fs = features.LOG_MEL
    rate = 22050
    t = np.arange(int(3.0 * rate)) / rate
    voice = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    write_audio(tmp_path / "good.mp3", voice, rate)
    write_audio(tmp_path / "short.flac", voice[: rate // 3], rate, "FLAC")
    write_audio(tmp_path / "silent.mp3", np.zeros(2 * rate, np.float32), rate)
    infinite = voice.copy()
    infinite[100:110] = np.inf
    soundfile.write(tmp_path / "inf.wav", infinite, rate, subtype="FLOAT")
    (tmp_path / "corrupt.mp3").write_bytes(b"RIFF? not audio, garbage " * 100)
    (tmp_path / "empty.mp3").write_bytes(b"")

    spill_dir = str(tmp_path / "spill")
    fn = DecodeAudioFn(fs, max_blocks_per_clip=2, spill_dir=spill_dir)
    fn.setup()
    fn.start_bundle()

    def run(name):
        c = cv.Clip(f"en/{name}", str(tmp_path / name), "spk", features.MALE, "en")
        return list(fn.process(("train", c), total=7))

    [good] = run("good.mp3")
    assert isinstance(good, DecodedClip) and good.split == "train"
    assert good.block_indices == (0, 2)  # 3 s has 3 blocks, capped at 2, evenly spaced
    assert good.spill.count == 2
    assert abs(good.seconds - 3.0) < 0.1
    for name, reason in [
        ("short.flac", audio.TOO_SHORT),
        ("silent.mp3", audio.SILENT),
        ("inf.wav", audio.NON_FINITE),
        ("corrupt.mp3", audio.UNDECODABLE),
        ("empty.mp3", audio.EMPTY_FILE),
        ("missing.mp3", audio.MISSING_FILE),
    ]:
        [out] = run(name)
        assert out.tag == REJECTED, name
        assert (out.value.item, out.value.reason) == (f"en/{name}", reason)
    fn.finish_bundle()
    # The spill file holds exactly the kept blocks the job's front end computes, and those are the
    # serving graph's (TensorFlow) blocks to within the front ends' tolerance (tests/pipeline/test_frontend.py).
    waveform = audio.read_audio_file(str(tmp_path / "good.mp3"), fs.sample_rate)
    expected, _ = frontend.waveform_to_blocks(waveform, fs)
    got = {slot: block for _, slot, block in read_blocks([(good.spill, [0, 1])], fs.block_shape)}
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[2])
    serving, _ = spectrogram.make_block_fn(fs)(waveform)
    np.testing.assert_allclose(got[1], serving.numpy()[2], atol=5e-3)  # float32 FFTs: quiet bins (benchmarks.frontend)


def test_evenly_spaced():
    assert evenly_spaced(3, 10).tolist() == [0, 1, 2]
    assert evenly_spaced(10, 3).tolist() == [0, 4, 9]




def test_clip_files_must_resolve_inside_clips_and_are_read_as_they_are(tmp_path):
    import gzip

    from beam_jobs.decode import read_clip_audio, read_clip_bytes

    rate = 16000
    voice = (0.3 * np.sin(2 * np.pi * 140 * np.arange(rate) / rate)).astype(np.float32)
    clips = tmp_path / "en" / "clips"
    clips.mkdir(parents=True)
    write_audio(tmp_path / "secret.wav", voice, rate, "WAV")
    write_audio(clips / "ok.wav", voice, rate, "WAV")
    os.symlink(tmp_path / "secret.wav", clips / "escape.wav")
    os.mkfifo(clips / "fifo.wav")
    (clips / "packed.wav.gz").write_bytes(gzip.compress((clips / "ok.wav").read_bytes()))
    # A locale whose whole clips/ is a link (as benchmarks.scale makes them) is inside.
    (tmp_path / "copy").mkdir()
    os.symlink(clips, tmp_path / "copy" / "clips")

    def the_clip(locale_dir, name):
        return cv.Clip(f"{locale_dir.name}/{name}", str(locale_dir / "clips" / name), "s", features.MALE, "en")

    assert len(read_clip_audio(the_clip(tmp_path / "en", "ok.wav"), rate)) == rate
    assert len(read_clip_audio(the_clip(tmp_path / "copy", "ok.wav"), rate)) == rate
    assert read_clip_bytes(the_clip(tmp_path / "en", "packed.wav.gz"))[:2] == b"\x1f\x8b"  # not inflated
    for name, reason in [("escape.wav", audio.PATH_OUTSIDE_CLIPS), ("fifo.wav", audio.NOT_A_FILE),
                         ("packed.wav.gz", audio.UNDECODABLE), ("gone.wav", audio.MISSING_FILE)]:
        with pytest.raises(audio.AudioError) as e:
            read_clip_audio(the_clip(tmp_path / "en", name), rate)
        assert e.value.reason == reason, name
        assert name in e.value.detail


def test_read_clips_reads_a_locale_once_and_a_duplicated_row_once(tmp_path):
    locale = tmp_path / "en"
    (locale / "clips").mkdir(parents=True)
    (locale / "validated.tsv").write_text(
        "client_id\tpath\tgender\nb\tx.mp3\tmale\na\tx.mp3\tmale\nc\ty.mp3\tfemale\nd\tz.mp3\tother\n")
    with make_test_pipeline() as p:
        # The release root and its locale: the same TSV, given twice.
        clips, rejected = p | ReadClips([str(tmp_path), str(locale)])
        assert_that(clips | beam.Map(lambda c: (c.clip_id, c.speaker_id)),
                    equal_to([("en/x.mp3", "a"), ("en/y.mp3", "c")]), label="Clips")
        assert_that(rejected | beam.Map(lambda r: (r.item, r.reason)),
                    equal_to([("en/x.mp3", "duplicate_clip"), ("en/z.mp3", "gender_other")]), label="Rejected")


@pytest.mark.parametrize("error, reason", [(MemoryError("cannot allocate 12 GiB"), audio.OUT_OF_MEMORY),
                                           (RuntimeError("a bug in one clip"), audio.UNEXPECTED_ERROR)])
def test_any_failure_of_one_clip_is_its_rejection(tmp_path, monkeypatch, error, reason):
    from beam_jobs import decode

    fs = features.LOG_MEL
    write_audio(tmp_path / "good.wav", np.zeros(fs.sample_rate, np.float32), fs.sample_rate, fmt="WAV")
    fn = DecodeAudioFn(fs, max_blocks_per_clip=2, spill_dir=str(tmp_path / "spill"))
    fn.setup()
    fn.start_bundle()

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(decode, "read_clip_audio", failing)
    c = cv.Clip("en/good.wav", str(tmp_path / "good.wav"), "spk", features.MALE, "en")
    [out] = list(fn.process(("train", c), total=1))
    assert out.tag == REJECTED and out.value.reason == reason
    assert type(error).__name__ in out.value.detail and str(error) in out.value.detail


def test_decode_audio_fn_adds_augmented_copies_to_train_only(tmp_path, monkeypatch):
    fs = features.LOG_MEL
    rate = 16000
    t = np.arange(int(3.0 * rate)) / rate
    # A voiced buzz at 120 Hz (harmonics, as a voice has) with a slow level change.
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 20)) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
    write_audio(tmp_path / "a.flac", (0.1 * voice).astype(np.float32), rate, "FLAC")
    c = cv.Clip("en/a.flac", str(tmp_path / "a.flac"), "spk", features.MALE, "en")

    def decode(seed, split="train", fraction=1.0):
        fn = DecodeAudioFn(fs, max_blocks_per_clip=3, spill_dir=str(tmp_path / f"spill{seed}"), seed=seed,
                           augment=CopySettings(copies=2, fraction=fraction))
        fn.setup()
        fn.start_bundle()
        out = list(fn.process((split, c), total=1))
        fn.finish_bundle()
        return out

    original, *copies = decode(seed=7)
    assert original.clip == c and original.clip.augmentation == ""
    assert [x.clip.clip_id for x in copies] == ["en/a.flac#aug0", "en/a.flac#aug1"]
    assert all(x.split == "train" and x.clip.speaker_id == "spk" and x.clip.label == features.MALE for x in copies)
    tags = [x.clip.augmentation for x in copies]
    assert all(tag.startswith("f0x") for tag in tags) and tags[0] != tags[1]
    assert [x.clip.augmentation for x in decode(seed=7)[1:]] == tags  # a seed gives the same copies
    assert [x.clip.augmentation for x in decode(seed=8)[1:]] != tags
    # The copies' blocks are other blocks than the recording's.
    first = {s: b for _, s, b in read_blocks([(original.spill, [0])], fs.block_shape)}[0]
    copied = {s: b for _, s, b in read_blocks([(copies[0].spill, [0])], fs.block_shape)}[0]
    assert np.isfinite(copied).all() and not np.allclose(first, copied, atol=0.1)
    assert len(decode(seed=7, fraction=0.0)) == 1  # a clip not chosen for copies
    [held_out] = decode(seed=7, split="validation")  # validation and test are never augmented
    assert held_out.clip == c and held_out.split == "validation"

    from pipeline import waveform_augment

    def broken(*args):
        raise ValueError("no pitch")

    monkeypatch.setattr(waveform_augment, "apply", broken)
    original, *failed = decode(seed=7)
    assert isinstance(original, DecodedClip)  # a copy that fails costs the copy only
    assert [(f.tag, f.value.item, f.value.reason) for f in failed] == [
        (REJECTED, "en/a.flac#aug0", "augmentation_failed"), (REJECTED, "en/a.flac#aug1", "augmentation_failed")]


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_decode_audio_fn_lowers_a_share_of_womens_copies(tmp_path, share):
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate  # a block (0.96 s) even after the fastest tempo
    clips = {}
    for name, f0, label in (("m", 120, features.MALE), ("f", 210, features.FEMALE)):
        voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 15)) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
        write_audio(tmp_path / f"{name}.flac", (0.1 * voice).astype(np.float32), rate, "FLAC")
        clips[label] = cv.Clip(f"en/{name}.flac", str(tmp_path / f"{name}.flac"), name, label, "en")
    fn = DecodeAudioFn(features.LOG_MEL, max_blocks_per_clip=1, spill_dir=str(tmp_path / "spill"), seed=5,
                       augment=CopySettings(copies=12, female_lowered=share))
    fn.setup()
    fn.start_bundle()
    factors = {}
    for label, c in clips.items():
        _, *copies = list(fn.process(("train", c), total=2))
        assert [getattr(x, "value", None) for x in copies if not isinstance(x, DecodedClip)] == []
        assert len(copies) == 12 and all(x.clip.label == label for x in copies)
        factors[label] = np.array([float(x.clip.augmentation.split("_")[0][3:]) for x in copies])
    fn.finish_bundle()
    assert np.all((factors[features.MALE] >= 1.1) & (factors[features.MALE] <= 1.6))  # men's copies: always raised
    women = factors[features.FEMALE]
    lowered = (women >= 0.65) & (women <= 0.9)
    assert np.all(lowered | ((women >= 1.1) & (women <= 1.5)))  # 210 Hz: raised by at most +100 Hz
    if share in (0.0, 1.0):
        assert lowered.all() == bool(share) and lowered.any() == bool(share)
    else:
        assert 0 < lowered.sum() < len(women)  # a seeded choice per copy


def test_decode_audio_fn_raises_within_the_configured_f0_limits(tmp_path):
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    voice = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 15)) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))
    write_audio(tmp_path / "m.flac", (0.1 * voice).astype(np.float32), rate, "FLAC")
    c = cv.Clip("en/m.flac", str(tmp_path / "m.flac"), "m", features.MALE, "en")
    fn = DecodeAudioFn(features.LOG_MEL, max_blocks_per_clip=1, spill_dir=str(tmp_path / "spill"), seed=3,
                       augment=CopySettings(copies=12, max_f0_factor=2.2, max_f0_rise_hz=200.0))
    fn.setup()
    fn.start_bundle()
    _, *copies = list(fn.process(("train", c), total=1))
    fn.finish_bundle()
    factors = np.array([float(x.clip.augmentation.split("_")[0][3:]) for x in copies])
    assert factors.min() >= 1.1 and factors.max() <= 2.2 and factors.max() > 1.6  # beyond the default 1.6


def test_tally_counts_each_collection_in_one_combine_with_zero_for_an_empty_one():
    from beam_jobs.job import Tally, named_amounts

    with make_test_pipeline() as p:
        clips = p | "Clips" >> beam.Create(["a", "b", "c"])
        lengths = p | "Lengths" >> beam.Create([[1, 2], [3], []])
        nothing = p | "Nothing" >> beam.Create([]).with_output_types(str)
        tallies = (
            named_amounts(clips, "clips"),
            named_amounts(lengths, "items", len),
            named_amounts(nothing, "empty"),
        ) | Tally(("clips", "items", "empty", "never_fed"))
        assert_that(tallies, equal_to([{"clips": 3, "items": 3, "empty": 0, "never_fed": 0}]))
