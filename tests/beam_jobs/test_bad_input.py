"""Fuzz suite: every kind of bad input the audit found, in one corpus, through the whole job.

Each bad row must come out as a rejection with the right reason while the
good clips are written; nothing non-finite may reach the shards or the
metadata. Whole-job problems (no training data, a gender missing, an output
that cannot be written) must stop the job with one clear error.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from beam_jobs import job, outputs, runner, sample_corpus, summary
from beam_jobs.balance import DROPPED_BY_CLIP_BALANCE
from beam_jobs.read import CONFLICTING_GENDER
from pipeline import audio, examples, features
from pipeline import common_voice as cv
from tests.helpers import IN_PROCESS_BEAM, generated_voice, run_module, with_id3_picture, without_xing_frame

RATE = 16000
HEADER = sample_corpus.OLD_HEADER


def _wav_bytes(data: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    return _encoded(data, "WAV", subtype, rate)


def _encoded(data: np.ndarray, fmt: str, subtype: str | None = None, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _voice(male: bool, index: int, seconds: float = 2.0) -> np.ndarray:
    return generated_voice(male, seconds, index, RATE)


class _Corpus:
    """One locale written row by row: good clips and the bad inputs under test."""

    def __init__(self, root: str, locale: str = "xx"):
        self.locale_dir = os.path.join(root, locale)
        self.clips = os.path.join(self.locale_dir, "clips")
        os.makedirs(self.clips)
        self.rows: list[list[str]] = []
        self.expected: dict[str, str] = {}  # clip id (or row id) -> reason

    def add(self, path: str, speaker: str, gender: str, data: bytes | None = None, reason: str | None = None):
        if data is not None:
            with open(os.path.join(self.clips, path), "wb") as f:
                f.write(data)
        self.rows.append(sample_corpus._row(HEADER, {"client_id": speaker, "path": path, "gender": gender,
                                                     "sentence": "a sentence"}))
        if reason:
            self.expected[f"{os.path.basename(self.locale_dir)}/{path}"] = reason

    def write(self) -> str:
        with open(os.path.join(self.locale_dir, cv.VALIDATED_TSV), "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
            writer.writerow(HEADER)
            writer.writerows(self.rows)
        return self.locale_dir


def _good_clips(corpus: _Corpus, per_gender: int = 10) -> None:
    for i in range(per_gender):
        for male in (True, False):
            gender = "male" if male else "female"
            corpus.add(f"good_{gender}_{i}.wav", f"{gender}{i}", gender, _wav_bytes(_voice(male, i), RATE))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The job's output on a corpus holding every per-row bad input."""
    root = str(tmp_path_factory.mktemp("fuzz"))
    outside = os.path.join(root, "outside.wav")
    with open(outside, "wb") as f:
        f.write(_wav_bytes(_voice(True, 99), RATE))
    c = _Corpus(root)
    _good_clips(c)
    voice = _voice(False, 50)
    with_inf = voice.copy()
    with_inf[100] = np.inf
    c.add("inf.wav", "bad1", "female", _wav_bytes(with_inf, RATE, "FLOAT"), audio.NON_FINITE)
    c.add("nan.wav", "bad2", "female", _wav_bytes(np.full(RATE * 2, np.nan, np.float32), RATE, "FLOAT"),
          audio.NON_FINITE)
    c.add("one_hz.wav", "bad3", "male", _wav_bytes(voice[:16000], 1), audio.UNDECODABLE)
    c.add("long.wav", "bad4", "male", _wav_bytes(_voice(True, 51, seconds=7.0), RATE), audio.TOO_LONG)
    c.add("gzipped.wav.gz", "bad5", "male", gzip.compress(_wav_bytes(voice, RATE)), audio.UNDECODABLE)
    c.add("missing.wav", "bad6", "male", None, audio.MISSING_FILE)
    c.add("empty.wav", "bad7", "male", b"", audio.EMPTY_FILE)
    c.add("garbage.mp3", "bad8", "male", os.urandom(4096), audio.UNDECODABLE)
    c.add("short.wav", "bad9", "female", _wav_bytes(voice[:800], RATE), audio.TOO_SHORT)
    c.add("silent.wav", "bad10", "female", _wav_bytes(np.zeros(RATE * 2, np.float32), RATE), audio.SILENT)
    os.symlink(outside, os.path.join(c.clips, "link.wav"))
    c.add("link.wav", "bad11", "male", None, audio.PATH_OUTSIDE_CLIPS)
    os.mkfifo(os.path.join(c.clips, "fifo.wav"))
    c.add("fifo.wav", "bad12", "male", None, audio.NOT_A_FILE)
    os.mkdir(os.path.join(c.clips, "dir.wav"))
    c.add("dir.wav", "bad13", "male", None, audio.NOT_A_FILE)
    # Rows whose path leaves clips/ are refused by the TSV parser, before any file is touched.
    for i, path in enumerate(["../../outside.wav", outside, "/etc/passwd", "/dev/zero"]):
        c.add(path, f"esc{i}", "male")
    c.add("good_male_0.wav", "male0", "male")  # a duplicated row
    c.rows.append(["x" * 200_000] + [""] * (len(HEADER) - 1))  # a field over csv's 131,072 limit
    # Issue 25: the same clip listed with two genders; one speaker with a male and a female clip; an empty
    # path; an MP3 behind a 0.5 MB cover picture (good audio); a text file named .mp3.
    c.add("conflict.wav", "both1", "male", _wav_bytes(_voice(True, 60), RATE), CONFLICTING_GENDER)
    c.add("conflict.wav", "both1", "female")
    c.add("mixed_m.wav", "mixed", "male", _wav_bytes(_voice(True, 61), RATE))
    c.add("mixed_f.wav", "mixed", "female", _wav_bytes(_voice(False, 62), RATE))
    c.add("", "nopath", "male")
    mp3 = without_xing_frame(_encoded(_voice(False, 63), "MP3"))
    c.add("cover.mp3", "cover", "female", with_id3_picture(mp3))
    c.add("notes.mp3", "notes", "male", b"these are my meeting notes\n" * 40, audio.UNDECODABLE)
    locale_dir = c.write()
    with open(os.path.join(locale_dir, cv.VALIDATED_TSV), "ab") as f:  # one Latin-1 row among UTF-8 ones
        f.write("latin\tcaf\xe9.wav\ta sentence\t2\t0\t\tmale\t\txx\t\n".encode("latin-1"))
    # Two locales whose validated.tsv is not a regular file: /dev/zero behind a symlink, and a FIFO.
    lost = []
    for name, make in (("zero", lambda p: os.symlink("/dev/zero", p)), ("fifo", os.mkfifo)):
        os.makedirs(os.path.join(root, name, "clips"))
        make(os.path.join(root, name, cv.VALIDATED_TSV))
        lost.append(os.path.join(root, name))
    out = os.path.join(root, "out")
    config = job.PreprocessConfig(cv_dirs=(locale_dir, *lost), output_dir=out, split_fractions=(0.5, 0.25, 0.25),
                                  max_clip_seconds=5.0, max_blocks_per_clip=3, seed=2,
                                  balance_clips=False)  # every clip reaches the decoder
    metadata = job.run(config, IN_PROCESS_BEAM)
    return c, out, metadata


def _rejections(out: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for name in sorted(os.listdir(out)):
        if name.startswith(features.REJECTED_PREFIX):
            with open(os.path.join(out, name)) as f:
                for line in f.read().splitlines()[1:]:
                    item, reason, detail = line.split("\t", 2)
                    rows[item] = (reason, detail)
    return rows


def test_every_bad_clip_is_rejected_with_its_reason(fuzzed):
    corpus, out, _ = fuzzed
    rejected = _rejections(out)
    for clip_id, reason in corpus.expected.items():
        assert clip_id in rejected, f"{clip_id} not listed"
        assert rejected[clip_id][0] == reason, (clip_id, rejected[clip_id])
    reasons = [reason for reason, _ in rejected.values()]
    assert reasons.count(audio.PATH_OUTSIDE_CLIPS) == 4 + 1  # four TSV paths and the symlink
    assert reasons.count("duplicate_clip") == 1
    long_rows = [d for r, d in rejected.values() if r == cv.MALFORMED_ROW and "200,000 characters" in d]
    assert len(long_rows) == 1


def _rejection_rows(out: str) -> list[tuple[str, str, str]]:
    rows = []
    for name in sorted(os.listdir(out)):
        if name.startswith(features.REJECTED_PREFIX):
            with open(os.path.join(out, name)) as f:
                rows += [tuple(line.split("\t", 2)) for line in f.read().splitlines()[1:]]
    return rows


def test_tsvs_that_are_not_regular_files_lose_their_locale_only(fuzzed):
    corpus, out, metadata = fuzzed
    root = os.path.dirname(corpus.locale_dir)
    zero, fifo = (os.path.join(root, name, cv.VALIDATED_TSV) for name in ("zero", "fifo"))
    assert metadata["lost_sources"] == [
        {"item": fifo, "reason": audio.NOT_A_FILE, "detail": f"{fifo}: not a regular file but a FIFO; its rows "
                                                              "were not read"},
        {"item": zero, "reason": audio.NOT_A_FILE, "detail": f"{zero}: not a regular file but a character device "
                                                              "(a symlink to /dev/zero); its rows were not read"}]
    assert sum(metadata["splits"]["train"]["clips"].values()) > 0  # the good locale went on
    assert not [n for n in os.listdir(out) if n.startswith("beam-temp")]
    text = summary.summarize(metadata, out)
    assert f"Not read: {zero}: not a regular file but a character device" in text


def test_one_clip_with_two_genders_is_refused_and_mixed_speakers_are_named(fuzzed):
    _, out, metadata = fuzzed
    rows = _rejection_rows(out)
    conflicts = [r for r in rows if r[1] == CONFLICTING_GENDER]
    assert [r[0] for r in conflicts] == ["xx/conflict.wav"] * 2  # both rows, and neither kept
    assert "male (client_id both1), female (client_id both1)" in conflicts[0][2]
    assert metadata["speakers_with_both_genders"] == ["mixed"]
    assert "Speakers whose clips carry both genders (kept; listed in metadata.json): 1: mixed" in summary.summarize(
        metadata, out)


def test_messages_name_the_true_reason(fuzzed):
    corpus, out, _ = fuzzed
    rows = {(item, reason): detail for item, reason, detail in _rejection_rows(out)}
    tsv = os.path.join(corpus.locale_dir, cv.VALIDATED_TSV)
    number = 2 + [r[0] for r in corpus.rows].index("nopath")  # line 1 is the header
    assert rows[(f"{tsv}:{number}", cv.MALFORMED_ROW)] == f"line {number}: the path field is empty"
    assert rows[(f"{tsv}:{len(corpus.rows) + 2}", cv.MALFORMED_ROW)].endswith("not UTF-8 text (byte 0xe9 at column 10)")
    assert rows[("xx/notes.mp3", audio.UNDECODABLE)].endswith("notes.mp3: not audio but a text file (it begins "
                                                             "'these are my meeting notes these are my ')")
    assert not [k for k in rows if k[0] == "xx/cover.mp3"]  # the cover art is not audio: the clip is not too long


def test_good_clips_are_all_accounted_for_and_nothing_non_finite_is_written(fuzzed):
    corpus, out, metadata = fuzzed
    rejected = _rejections(out)
    shards = [os.path.join(out, n) for n in sorted(os.listdir(out)) if n.endswith(features.SHARD_SUFFIX)]
    dataset = tf.data.TFRecordDataset(shards, compression_type=features.SHARD_COMPRESSION).batch(64)
    written_clips = set()
    for batch in dataset.map(lambda s: examples.parse_blocks(s, features.LOG_MEL)):
        assert np.isfinite(batch[features.BLOCK_KEY].numpy()).all()
        written_clips.update(c.decode() for c in batch[features.CLIP_ID_KEY].numpy())
    good = {f"xx/good_{g}_{i}.wav" for g in features.GENDER_NAMES for i in range(10)}
    good |= {"xx/mixed_m.wav", "xx/mixed_f.wav", "xx/cover.mp3"}
    # Each good clip is written or listed (balancing may drop some, with its reason).
    for clip_id in good:
        assert clip_id in written_clips or rejected.get(clip_id, ("",))[0] in (DROPPED_BY_CLIP_BALANCE,
                                                                                "dropped_by_block_balance"), clip_id
    assert len(written_clips & good) >= 8
    assert not written_clips - good  # no bad clip reached the shards

    def finite(value):
        if isinstance(value, float):
            return math.isfinite(value)
        if isinstance(value, dict):
            return all(finite(v) for v in value.values())
        if isinstance(value, list):
            return all(finite(v) for v in value)
        return True

    on_disk = json.load(open(os.path.join(out, features.METADATA_FILENAME)))
    assert on_disk == metadata and finite(on_disk)
    assert metadata["rejected"][audio.NON_FINITE] == 2


def _one_gender_corpus(root: str) -> str:
    c = _Corpus(root)
    for i in range(4):
        c.add(f"m{i}.wav", f"m{i}", "male", _wav_bytes(_voice(True, i), RATE))
    return c.write()


@pytest.mark.slow
def test_a_run_that_cannot_train_a_model_fails_and_commits_no_metadata(tmp_path):
    out = tmp_path / "out"
    config = job.PreprocessConfig(cv_dirs=(_one_gender_corpus(str(tmp_path / "c")),), output_dir=str(out),
                                  split_fractions=(1.0, 0.0, 0.0), max_blocks_per_clip=2)
    with pytest.raises(runner.JobError, match="cannot train a model: no training block was written"):
        job.run(config, IN_PROCESS_BEAM)
    assert not (out / features.METADATA_FILENAME).exists()
    incomplete = json.loads((out / "metadata.incomplete.json").read_text())
    assert incomplete["problems"] == ["no training block was written"]
    # Every clip is accounted for: the whole split had one gender, so balancing dropped it, with the reason.
    reasons = {r for r, _ in _rejections(str(out)).values()}
    assert reasons == {DROPPED_BY_CLIP_BALANCE}
    # Without clip balancing the blocks still cannot be balanced: same verdict, same exit.
    again = dataclasses.replace(config, output_dir=str(tmp_path / "again"), balance_clips=False)
    with pytest.raises(runner.JobError, match="no training block"):
        job.run(again, IN_PROCESS_BEAM)


def test_missing_gender_in_a_split_is_named(tmp_path):
    from beam_jobs import write

    splits = write.nest_split_counts([(("train/male", "blocks"), 5), (("train/female", "blocks"), 4),
                                      (("test/male", "blocks"), 2)])
    flags = {"split_fractions": [0.8, 0.0, 0.2], "use_official_splits": False}
    assert write.completeness_problems(splits, {"frames": 9}, flags) == ["split test has no female blocks"]
    flags["split_fractions"] = [0.8, 0.1, 0.1]
    assert write.completeness_problems(splits, {"frames": 9, "non_finite": True}, flags) == [
        "split validation has no male and no female blocks", "split test has no female blocks",
        "the normalization statistics are not finite"]


@pytest.mark.slow
def test_header_only_and_columnless_tsvs_fail_the_run_with_reasons(tmp_path):
    for name, text in (("header_only", "\t".join(HEADER) + "\n"), ("no_gender", "client_id\tpath\nx\ty.mp3\n")):
        locale = tmp_path / name / "xx"
        (locale / "clips").mkdir(parents=True)
        (locale / cv.VALIDATED_TSV).write_text(text)
        out = tmp_path / f"{name}_out"
        config = job.PreprocessConfig(cv_dirs=(str(locale),), output_dir=str(out))
        with pytest.raises(runner.JobError, match="no training block"):
            job.run(config, IN_PROCESS_BEAM)
        if name == "no_gender":
            assert [r for r, _ in _rejections(str(out)).values()] == [cv.MISSING_COLUMNS]


def test_output_dir_that_is_a_file_or_unwritable_is_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(runner.JobError, match="is a file, not a directory"):
        outputs.check_output_writable(str(a_file))
    with pytest.raises(runner.JobError, match="cannot write there"):
        outputs.check_output_writable(str(a_file / "below"))
    if os.geteuid() != 0:  # root writes anywhere: the read-only case needs a normal user
        read_only = tmp_path / "ro"
        read_only.mkdir(mode=0o555)
        with pytest.raises(runner.JobError, match="cannot write there"):
            outputs.check_output_writable(str(read_only))


@pytest.mark.slow
def test_cli_exit_status_and_one_line_errors(tmp_path):
    corpus = _one_gender_corpus(str(tmp_path / "c"))
    result = run_module("beam_jobs.preprocess", f"--cv_dir={corpus}", f"--output_dir={tmp_path / 'out'}",
                        "--runner=DirectRunner", "--direct_running_mode=in_memory")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("preprocess: error: the data in")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = run_module("beam_jobs.preprocess", f"--cv_dir={corpus}", f"--output_dir={a_file}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"preprocess: error: --output_dir {a_file} is a file, not a directory"


@pytest.mark.slow
def test_cli_exits_1_naming_a_tsv_it_could_not_read(tmp_path):
    c = _Corpus(str(tmp_path / "c"))
    _good_clips(c, per_gender=3)
    good = c.write()
    fifo = tmp_path / "c" / "yy"
    (fifo / "clips").mkdir(parents=True)
    os.mkfifo(fifo / cv.VALIDATED_TSV)
    result = run_module("beam_jobs.preprocess", f"--cv_dir={good}", f"--cv_dir={fifo}",
                        f"--output_dir={tmp_path / 'out'}", "--split_fractions=1,0,0", "--runner=DirectRunner",
                        "--direct_running_mode=in_memory", timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"Not read: {fifo / cv.VALIDATED_TSV}: not a regular file but a FIFO; its rows were not read " \
           f"({audio.NOT_A_FILE})" in result.stdout
    assert (tmp_path / "out" / features.METADATA_FILENAME).exists()  # the readable locale was written


def test_one_locale_named_two_ways_is_one_locale(tmp_path, monkeypatch):
    from beam_jobs import read

    locale = tmp_path / "cv" / "en"
    (locale / "clips").mkdir(parents=True)
    (locale / cv.VALIDATED_TSV).write_text("\t".join(HEADER) + "\n")
    monkeypatch.chdir(tmp_path)
    assert read.expand_locale_dirs("./cv/en") == read.expand_locale_dirs("cv/en/") == ["cv/en"]
    assert read.expand_locale_dirs("./cv") == ["cv/en"]
