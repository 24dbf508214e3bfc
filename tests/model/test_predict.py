"""`model.predict`, the LiteRT classifier, and LiteRT against the SavedModel."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from beam_jobs import sample_corpus
from model import classifier
from pipeline import features

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RATE = features.LOG_MEL.sample_rate


def _voice(male: bool, seconds: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return sample_corpus.synthesize(sample_corpus.make_speaker(rng, male, seed), seconds, rng, sr)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory) -> dict[str, str]:
    """One file per format and condition, and one per failure reason."""
    d = tmp_path_factory.mktemp("audio")
    files = {}
    voice = _voice(True, 4.0, 44100, 1)
    files["stereo_wav_44k"] = str(d / "stereo.wav")
    soundfile.write(files["stereo_wav_44k"], np.stack([voice, 0.5 * voice], axis=1), 44100)
    files["flac_16k"] = str(d / "voice.flac")
    soundfile.write(files["flac_16k"], _voice(False, 3.0, 16000, 2), 16000)
    files["mp3_48k"] = str(d / "voice.mp3")
    soundfile.write(files["mp3_48k"], _voice(False, 6.0, 48000, 3), 48000, format="MP3", subtype="MPEG_LAYER_III")
    files["ogg_22k"] = str(d / "voice.ogg")
    soundfile.write(files["ogg_22k"], _voice(True, 2.5, 22050, 4), 22050, format="OGG", subtype="VORBIS")
    files["long_wav"] = str(d / "long.wav")
    soundfile.write(files["long_wav"], _voice(True, 75.0, 16000, 5), 16000)
    files["missing"] = str(d / "nowhere.wav")
    files["empty"] = str(d / "empty.mp3")
    open(files["empty"], "wb").close()
    files["unreadable"] = str(d / "notes.wav")
    with open(files["unreadable"], "w") as f:
        f.write("not audio at all\n")
    files["too_short"] = str(d / "short.wav")
    soundfile.write(files["too_short"], _voice(True, 0.5, 16000, 6), 16000)
    files["silent"] = str(d / "silent.wav")
    soundfile.write(files["silent"], np.zeros(3 * 16000, np.float32), 16000)
    return files


GOOD = ("stereo_wav_44k", "flac_16k", "mp3_48k", "ogg_22k", "long_wav")
ERRORS = {"missing": "missing_file", "empty": "empty_file", "unreadable": "undecodable", "too_short": "too_short",
          "silent": "silent"}


def _run(*args, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "model.predict", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_jsonl_gives_every_file_a_line_in_order_and_fails_on_errors(trained_run, audio_files):
    names = list(GOOD) + list(ERRORS)
    proc = _run(f"--model_dir={trained_run}", "--format=jsonl", *[audio_files[n] for n in names])
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == [audio_files[n] for n in names]
    for name, line in zip(names, lines, strict=True):
        if name in ERRORS:
            assert line["error"].startswith(ERRORS[name]), line
            assert set(line) == {"path", "error"}
        else:
            assert line["gender"] in features.GENDER_NAMES and 0 <= line["p_female"] <= 1, line
            assert set(line) == {"path", "gender", "p_female", "duration_s"}
    durations = {n: line.get("duration_s") for n, line in zip(names, lines, strict=True)}
    assert durations["stereo_wav_44k"] == pytest.approx(4.0, abs=0.01)
    assert durations["long_wav"] == pytest.approx(75.0, abs=0.01)
    assert "5 of 10 files failed" in proc.stderr


def test_text_format_file_list_and_clean_exit(trained_run, audio_files, tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text("# my clips\n" + "\n".join(audio_files[n] for n in GOOD[1:]) + "\n\n")
    proc = _run(f"--model_dir={trained_run}", f"--file_list={listing}", audio_files["stereo_wav_44k"])
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["gender", "p_female", "seconds", "path"]
    assert len(rows) == len(GOOD) and rows[0].endswith(audio_files["stereo_wav_44k"])
    assert all(r.split()[0] in ("male", "female") and 0 <= float(r.split()[1]) <= 1 for r in rows)
    bad = _run(f"--model_dir={trained_run}", audio_files["silent"])
    assert bad.returncode == 1 and bad.stdout.splitlines()[1].startswith("ERROR") and "silent" in bad.stdout


def test_no_files_is_a_usage_error():
    proc = _run()
    assert proc.returncode != 0 and "no audio files" in proc.stderr


def test_predict_does_not_import_tensorflow(trained_run, audio_files):
    code = ("import sys; from model import predict, classifier; "
            f"c = classifier.Classifier(classifier.resolve_model_dir({trained_run!r})); "
            f"print(c.classify_file({audio_files['flac_16k']!r}).gender); "
            "print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "False"


def test_litert_matches_the_saved_model(trained_run, audio_files):
    export_dir = os.path.join(trained_run, "export")
    lite = classifier.Classifier(export_dir)
    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    for name in GOOD:
        waveform = lite.decode(audio_files[name])
        expected = served(waveform=tf.constant(waveform[None]), length=tf.constant([len(waveform)], tf.int32))
        got = lite.classify_waveform(waveform)
        assert abs(got.p_female - float(expected["p_female"][0])) < 1e-3, name
        assert got.gender == expected["gender"][0].numpy().decode(), name


def test_model_dir_may_be_the_run_or_its_export(trained_run):
    assert classifier.resolve_model_dir(trained_run) == os.path.join(trained_run, "export")
    export_dir = os.path.join(trained_run, "export")
    assert classifier.resolve_model_dir(export_dir) == export_dir
    with pytest.raises(FileNotFoundError, match="model.tflite"):
        classifier.Classifier(os.path.dirname(trained_run))


def test_the_shipped_pretrained_model_works_without_model_dir(audio_files):
    lite = classifier.Classifier()
    assert lite.model_dir == classifier.PRETRAINED_DIR
    result = lite.classify_file(audio_files["mp3_48k"])
    assert result.error is None and result.gender in features.GENDER_NAMES
    assert os.path.getsize(os.path.join(classifier.PRETRAINED_DIR, classifier.LITERT_FILENAME)) < 5_000_000
