"""The labelling job: the classify DoFn, speaker pooling, mislabel flags, the CLI."""

import csv
import glob
import os

import apache_beam as beam
import numpy as np
import pytest
import soundfile
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import sample_corpus
from model.label import transforms as label
from model.predict import classifier
from pipeline import audio
from pipeline import common_voice as cv
from tests.helpers import make_test_pipeline, run_module


def _clips(corpus_dir, include_unlabelled=True):
    clips = []
    for locale in ("en", "de"):
        with open(os.path.join(corpus_dir, locale, cv.VALIDATED_TSV), encoding="utf-8", newline="") as f:
            parsed = cv.parse_validated_tsv(f, os.path.join(corpus_dir, locale), include_unlabelled)
            clips += [c for c in parsed if isinstance(c, cv.Clip)]
    return clips


def test_blank_gender_rows_become_unlabelled_clips_only_on_request(corpus_dir):
    unlabelled = [c for c in _clips(corpus_dir) if c.label == -1]
    assert len(unlabelled) == 2  # one blank-gender row per locale
    assert not [c for c in _clips(corpus_dir, include_unlabelled=False) if c.label == -1]


@pytest.fixture(scope="module")
def classify_fn(trained_run):
    fn = label.ClassifyClipFn(os.path.join(trained_run, "export"))
    fn.setup()
    return fn


def test_dofn_scores_good_clips_and_rejects_bad_ones(classify_fn, corpus_dir):
    clips = _clips(corpus_dir)
    by_size = {c.clip_id: os.path.getsize(c.audio_path) if os.path.exists(c.audio_path) else -1 for c in clips}
    good = next(c for c in clips if c.label == 0 and by_size[c.clip_id] > 10_000)
    (score,) = list(classify_fn.process(good))
    assert isinstance(score, label.ClipScore) and 0 <= score.p_female <= 1 and score.duration_s > 1
    missing = cv.Clip("en/none.mp3", os.path.join(corpus_dir, "en", "clips", "none.mp3"), "s", 0, "en")
    (rejected,) = list(classify_fn.process(missing))
    assert rejected.tag == "rejected" and rejected.value.reason == "missing_file"
    reasons = set()
    for clip in clips:
        for out in classify_fn.process(clip):
            if not isinstance(out, label.ClipScore):
                reasons.add(out.value.reason)
    assert reasons == {"missing_file", "undecodable", "empty_file", "too_short", "silent"}


def test_dofn_rejects_hostile_clips_and_streams_long_ones(classify_fn, tmp_path):
    clips_dir = tmp_path / "xx" / "clips"
    clips_dir.mkdir(parents=True)
    rng = np.random.default_rng(3)
    voice = sample_corpus.synthesize(sample_corpus.make_speaker(rng, False, 3), 40.0, rng, 16000).astype(np.float32)
    soundfile.write(clips_dir / "long.wav", voice, 16000)  # 40 s: several windows of the classifier
    poisoned = voice[: 3 * 16000].copy()
    poisoned[500] = np.inf
    soundfile.write(clips_dir / "inf.wav", poisoned, 16000, subtype="FLOAT")
    os.mkfifo(clips_dir / "fifo.wav")
    (tmp_path / "outside.wav").write_bytes((clips_dir / "long.wav").read_bytes())
    os.symlink(tmp_path / "outside.wav", clips_dir / "link.wav")

    def clip(name):
        return cv.Clip(f"xx/{name}", str(clips_dir / name), "spk", 1, "xx")

    (score,) = list(classify_fn.process(clip("long.wav")))
    whole = classifier.Classifier(classify_fn._model_dir).classify_waveform(voice)
    assert score.duration_s == pytest.approx(40.0) and score.p_female == pytest.approx(whole.p_female, abs=1e-4)
    for name, reason in (("inf.wav", audio.NON_FINITE), ("fifo.wav", audio.NOT_A_FILE),
                         ("link.wav", audio.PATH_OUTSIDE_CLIPS)):
        (rejected,) = list(classify_fn.process(clip(name)))
        assert rejected.tag == "rejected" and rejected.value.reason == reason, (name, rejected.value)


def test_pool_speaker_means_clips_and_measures_agreement():
    clip = cv.Clip("en/a.mp3", "a", "spk", 1, "en")
    scores = [label.ClipScore(clip, p, 2.0) for p in (0.9, 0.8, 0.2, 0.7)]
    pooled = label.pool_speaker("spk", scores)
    assert pooled.clips == 4 and pooled.label == "female" and pooled.predicted == "female"
    assert pooled.p_female == pytest.approx(0.65) and pooled.agreement == pytest.approx(0.75)
    assert pooled.confidence == pytest.approx(0.65)


def test_flag_mislabels_lists_confident_disagreements_only():
    def score(clip_id, speaker, given, p):
        return label.ClipScore(cv.Clip(clip_id, "x", speaker, given, "en"), p, 3.0)

    scores = [score("en/1", "a", 0, 0.97), score("en/2", "a", 0, 0.95), score("en/3", "b", 1, 0.6),
              score("en/4", "c", -1, 0.99), score("en/5", "d", 1, 0.02)]
    with make_test_pipeline() as p:
        clip_scores = p | beam.Create(scores)
        speakers = clip_scores | label.AggregateSpeakers()
        flagged = (clip_scores, speakers) | label.FlagMislabels(0.9)
        assert_that(flagged | beam.Map(lambda line: tuple(line.split("\t")[:5])), equal_to([
            ("clip", "a", "en/1", "male", "female"), ("clip", "a", "en/2", "male", "female"),
            ("clip", "d", "en/5", "female", "male"),
            ("speaker", "a", "", "male", "female"), ("speaker", "d", "", "female", "male")]))


def test_classify_clips_composite_in_a_test_pipeline(trained_run, corpus_dir):
    unlabelled = [c for c in _clips(corpus_dir) if c.label == -1]
    with make_test_pipeline() as p:
        scores, rejected = p | beam.Create(unlabelled) | label.ClassifyClips(os.path.join(trained_run, "export"))
        assert_that(scores | beam.Map(lambda s: (s.clip.clip_id, s.predicted in ("male", "female"))),
                    equal_to([(c.clip_id, True) for c in unlabelled]), label="scores")
        assert_that(rejected, equal_to([]), label="no_rejections")


def _read_tsv(pattern):
    (path,) = glob.glob(pattern)
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_cli_scores_unlabelled_and_labelled_clips(trained_run, corpus_dir, tmp_path):
    out = tmp_path / "labels"
    proc = run_module("model.label", f"--cv_dir={corpus_dir}", f"--output={out}",
                      f"--model_dir={trained_run}/export", "--score_labelled", "--runner=DirectRunner",
                      "--direct_running_mode=in_memory", env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    # The corpus holds bad clips: as predict, the status is 1 when anything could not be labelled.
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(f"could not be labelled; reasons in {out}/rejected-*.tsv")
    clips = _read_tsv(str(out / "clips-*.tsv"))
    rejected = _read_tsv(str(out / "rejected-*.tsv"))
    audio_reasons = {"missing_file", "undecodable", "empty_file", "too_short", "silent"}
    # Every clip is either scored or rejected for its audio, never lost.
    assert len(clips) + sum(r["reason"] in audio_reasons for r in rejected) == len(_clips(corpus_dir))
    assert sum(1 for c in clips if c["label"] == "") == 2
    assert all(c["predicted"] in ("male", "female") and 0 <= float(c["p_female"]) <= 1 for c in clips)
    speakers = _read_tsv(str(out / "speakers-*.tsv"))
    assert sum(int(s["clips"]) for s in speakers) == len(clips)
    assert len({s["client_id"] for s in speakers}) == len(speakers)
    assert audio_reasons | {"malformed_row"} <= {r["reason"] for r in rejected}
    assert "gender_blank" not in {r["reason"] for r in rejected}
    _read_tsv(str(out / "mislabels-*.tsv"))  # exists, with its header


@pytest.mark.slow
def test_cli_refuses_unreadable_input(tmp_path):
    proc = run_module("model.label", f"--cv_dir={tmp_path}/none", f"--output={tmp_path}/o", timeout=120)
    assert proc.returncode == 2 and "no validated.tsv" in proc.stderr


@pytest.mark.slow
def test_cli_refuses_an_output_that_is_a_file_in_one_line(corpus_dir, tmp_path):
    a_file = tmp_path / "labels.tsv"
    a_file.write_text("x")
    proc = run_module("model.label", f"--cv_dir={corpus_dir}", f"--output={a_file}", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"label_clips: error: --output {a_file} is a file, not a directory"


@pytest.mark.slow
def test_cli_labels_a_tsv_without_a_gender_column(trained_run, tmp_path):
    locale = tmp_path / "cv" / "xx"
    (locale / "clips").mkdir(parents=True)
    rng = np.random.default_rng(3)
    voice = sample_corpus.synthesize(sample_corpus.make_speaker(rng, True, 0), 2.0, rng, 16000)
    soundfile.write(locale / "clips" / "a.wav", voice, 16000)
    (locale / cv.VALIDATED_TSV).write_text("client_id\tpath\nspk\ta.wav\n")
    out = tmp_path / "labels"
    proc = run_module("model.label", f"--cv_dir={locale}", f"--output={out}",
                      f"--model_dir={trained_run}/export", "--runner=DirectRunner", "--direct_running_mode=in_memory")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = _read_tsv(str(out / "clips-*.tsv"))
    assert (row["client_id"], row["path"], row["label"]) == ("spk", "a.wav", "")
    assert row["predicted"] in ("male", "female")


@pytest.mark.slow
def test_dataflow_dry_run_builds_offline(tmp_path):
    proc = run_module("model.label", "--cv_dir=gs://no-such-bucket/cv", "--output=gs://no-such-bucket/o",
                      "--model_dir=gs://no-such-bucket/model", "--score_labelled", "--flagfile=configs/dataflow.flags",
                      "--dry_run=True", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dry run" in proc.stderr
