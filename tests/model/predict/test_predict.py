"""`model.predict`, the LiteRT classifier, and LiteRT against the SavedModel."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from model.predict import classifier, export_format
from pipeline import audio, features, frontend
from tests.helpers import REPO, generated_voice, run_module, run_python

RATE = features.LOG_MEL.sample_rate


def _voice(male: bool, seconds: float, sr: int, seed: int) -> np.ndarray:
    return generated_voice(male, seconds, seed, sr)


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
    files["non_finite"] = str(d / "ten_nans.wav")
    poisoned = _voice(False, 3.0, 16000, 7).astype(np.float32)
    poisoned[1000:1010] = np.nan
    soundfile.write(files["non_finite"], poisoned, 16000, subtype="FLOAT")
    files["directory"] = str(d / "folder.wav")
    os.mkdir(files["directory"])
    files["fifo"] = str(d / "pipe.wav")
    os.mkfifo(files["fifo"])  # opening it for reading would block forever
    return files


GOOD = ("stereo_wav_44k", "flac_16k", "mp3_48k", "ogg_22k", "long_wav")
ERRORS = {"missing": "missing_file", "empty": "empty_file", "unreadable": "undecodable", "too_short": "too_short",
          "silent": "silent", "non_finite": "non_finite", "directory": "not_a_file", "fifo": "not_a_file"}


def _run(*args):
    return run_module("model.predict", *args, env={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=120)


def test_jsonl_gives_every_file_a_line_in_order_and_fails_on_errors(trained_run, audio_files):
    names = list(GOOD) + list(ERRORS)
    proc = _run(f"--model_dir={trained_run}", "--format=jsonl", *[audio_files[n] for n in names])
    assert proc.returncode == 1

    def not_json(token):  # json.dumps writes NaN/Infinity, which strict JSON readers refuse
        raise AssertionError(f"{token} in predict's JSON")

    lines = [json.loads(line, parse_constant=not_json) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == [audio_files[n] for n in names]
    for name, line in zip(names, lines, strict=True):
        if name in ERRORS:
            assert line["error"].startswith(ERRORS[name]), line
            assert set(line) == {"path", "error"}
        else:
            assert line["gender"] in features.GENDER_NAMES and 0 <= line["p_female"] <= 1, line
            assert set(line) == {"path", "gender", "p_female", "duration_s", "speech_s"}
    durations = {n: line.get("duration_s") for n, line in zip(names, lines, strict=True)}
    assert durations["stereo_wav_44k"] == pytest.approx(4.0, abs=0.01)
    assert durations["long_wav"] == pytest.approx(75.0, abs=0.01)
    assert f"{len(ERRORS)} of {len(names)} files failed" in proc.stderr


def test_text_format_file_list_and_clean_exit(trained_run, audio_files, tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text("# my clips\n" + "\n".join(audio_files[n] for n in GOOD[1:]) + "\n\n")
    proc = _run(f"--model_dir={trained_run}", f"--file_list={listing}", audio_files["stereo_wav_44k"])
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["gender", "p_female", "seconds", "speech", "path"]
    assert len(rows) == len(GOOD) and rows[0].endswith(audio_files["stereo_wav_44k"])
    assert all(r.split()[0] in ("male", "female") and 0 <= float(r.split()[1]) <= 1 for r in rows)
    bad = _run(f"--model_dir={trained_run}", audio_files["silent"])
    assert bad.returncode == 1 and bad.stdout.splitlines()[1].startswith("ERROR") and "silent" in bad.stdout


def test_no_files_is_a_usage_error():
    proc = _run()
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "predict: error: no audio files given (positional paths or --file_list)")


def test_predict_does_not_import_tensorflow(trained_run, audio_files):
    code = ("import sys; from model.predict import classifier, export_format; "
            f"c = classifier.Classifier(export_format.resolve_model_dir({trained_run!r})); "
            f"print(c.classify_file({audio_files['flac_16k']!r}).gender); "
            "print('tensorflow' in sys.modules)")
    proc = run_python(code)
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
        # The SavedModel answers the model's raw mean; the LiteRT classifier then applies the run's calibration.
        raw = float(expected["p_female"][0])
        assert abs(got.p_female - lite.calibrated(raw, whole_file=True)) < 1e-3, name
        assert lite.calibration.method != "identity" or got.gender == expected["gender"][0].numpy().decode(), name
        p, voiced = lite.block_probabilities(waveform)
        assert abs(float(np.mean(p[voiced])) - raw) < 1e-3, name


def test_model_dir_may_be_the_run_or_its_export(trained_run):
    assert export_format.resolve_model_dir(trained_run) == os.path.join(trained_run, "export")
    export_dir = os.path.join(trained_run, "export")
    assert export_format.resolve_model_dir(export_dir) == export_dir
    with pytest.raises(export_format.ModelDirError, match="missing; --model_dir must be"):
        classifier.Classifier(os.path.dirname(trained_run))


def test_the_shipped_pretrained_model_works_without_model_dir(audio_files):
    lite = classifier.Classifier()
    assert lite.model_dir == export_format.PRETRAINED_DIR
    result = lite.classify_file(audio_files["mp3_48k"])
    assert result.error is None and result.gender in features.GENDER_NAMES
    assert os.path.getsize(os.path.join(export_format.PRETRAINED_DIR, export_format.LITERT_FILENAME)) < 5_000_000


def test_command_problems_are_one_line_errors_with_status_2(trained_run, audio_files, tmp_path):
    good = audio_files["flac_16k"]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(good.encode() + b"\n/clips/caf\xe9.wav\n")
    corrupt = tmp_path / "corrupt_model"
    shutil.copytree(os.path.join(trained_run, "export"), corrupt)
    (corrupt / export_format.EXPORT_METADATA).write_text("{not json")
    cases = {
        "--file_list=" + str(tmp_path / "nowhere.txt"): "nowhere.txt: no such file",
        f"--file_list={latin1}": "line 2 is not UTF-8 (byte 0xe9)",
        f"--model_dir={corrupt}": "voicegender.json: corrupt",
        f"--model_dir={tmp_path}": "voicegender.json: missing; --model_dir must be",
    }
    for flag, message in cases.items():
        proc = _run(flag, good)
        assert proc.returncode == 2, (flag, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (flag, proc.stderr)
        assert proc.stderr.strip().splitlines()[-1].startswith("predict: error:"), (flag, proc.stderr)
    for flag in ("--chunk=0", "--decode_workers=0", "--min_confidence=2"):
        proc = _run(flag, good)
        name, value = flag[2:].split("=")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"predict: error: --{name} must be"), proc.stderr


def test_a_model_whose_settings_were_edited_is_refused(trained_run, tmp_path):
    export_dir = tmp_path / "export"
    shutil.copytree(os.path.join(trained_run, "export"), export_dir)
    classifier.Classifier(str(export_dir))  # the export as written passes its checksum
    info = json.loads((export_dir / export_format.EXPORT_METADATA).read_text())
    info["feature_set"]["sample_rate"] = 48000  # a 16 kHz model with a 48 kHz rate: every answer would change
    (export_dir / export_format.EXPORT_METADATA).write_text(json.dumps(info))
    with pytest.raises(export_format.ModelDirError, match="does not match model.tflite.*re-export"):
        classifier.Classifier(str(export_dir))
    del info[export_format.CHECKSUM_KEY]
    (export_dir / export_format.EXPORT_METADATA).write_text(json.dumps(info))
    with pytest.raises(export_format.ModelDirError, match="no checksum"):
        classifier.Classifier(str(export_dir))


def test_a_closed_pipe_ends_predict_quietly(audio_files):
    files = [audio_files[n] for n in GOOD] * 4
    proc = subprocess.run(f"{sys.executable} -m model.predict {' '.join(files)} | head -1", shell=True, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO},
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["gender", "p_female", "seconds", "speech", "path"]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_streaming_in_windows_gives_the_answer_of_one_whole_pass(audio_files):
    lite = classifier.Classifier()
    waveform = lite.decode(audio_files["long_wav"])  # 75 s: several windows
    assert len(waveform) > 2 * classifier.WINDOW_BLOCKS * lite.feature_set.block_samples
    whole = lite.classify_file(audio_files["long_wav"])
    # Ragged chunks that do not line up with blocks or windows.
    pieces = np.split(waveform, [7, 12_345, 200_001, 200_002, 640_000])
    chunked = lite.classify_chunks(pieces, "chunks")
    assert chunked.p_female == pytest.approx(whole.p_female, abs=1e-4)
    assert chunked.duration_s == pytest.approx(whole.duration_s)
    # The reference: every block scored in one call, with the numpy silence rule.
    p, _ = lite.block_probabilities(waveform)
    fs = lite.feature_set
    spans = waveform[: len(p) * fs.block_samples].reshape(len(p), -1).astype(np.float64)
    voiced = frontend.block_is_voiced(10 * np.log10(np.mean(spans**2, axis=1) + 1e-12))
    assert whole.p_female == pytest.approx(lite.calibrated(float(np.mean(p[voiced])), whole_file=True), abs=1e-4)


def test_a_file_is_read_a_chunk_at_a_time(audio_files, monkeypatch):
    lite = classifier.Classifier()
    sizes = []
    original = lite.classify_chunks

    def recording(chunks, path):
        def spy():
            for chunk in chunks:
                sizes.append(len(chunk))
                yield chunk
        return original(spy(), path)

    monkeypatch.setattr(lite, "classify_chunks", recording)
    result = lite.classify_file(audio_files["long_wav"])
    assert result.error is None
    assert len(sizes) > 1 and max(sizes) <= audio.STREAM_CHUNK_SECONDS * lite.sample_rate + 1


def test_a_model_that_answers_nan_gives_an_error_not_a_number(audio_files, monkeypatch):
    lite = classifier.Classifier()
    monkeypatch.setattr(lite, "block_probabilities",
                        lambda w: (np.full(len(w) // lite.feature_set.block_samples, np.nan, np.float32),
                                   np.ones(len(w) // lite.feature_set.block_samples, bool)))
    result = lite.classify_file(audio_files["flac_16k"])
    assert result.reason == audio.NON_FINITE and result.p_female is None
    assert "p_female" not in json.dumps(result.to_dict())


def test_csv_and_the_uncertain_answer(audio_files):
    good = [audio_files[n] for n in GOOD[:3]]
    plain = [json.loads(line) for line in _run("--format=jsonl", *good).stdout.splitlines()]
    # A threshold between the least and the most confident file's confidence.
    confidences = sorted(max(r["p_female"], 1 - r["p_female"]) for r in plain)
    cut = (confidences[0] + confidences[-1]) / 2
    proc = _run("--format=csv", f"--min_confidence={cut}", *good, audio_files["silent"])
    assert proc.returncode == 1
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["path"] for r in rows] == good + [audio_files["silent"]]
    for row, before in zip(rows, plain, strict=False):
        assert float(row["p_female"]) == pytest.approx(before["p_female"], abs=1e-6)  # p_female still given
        confident = max(before["p_female"], 1 - before["p_female"]) >= cut
        assert row["gender"] == (before["gender"] if confident else "uncertain") and row["error"] == ""
    assert {r["gender"] for r in rows[:3]} & {"uncertain"} and {r["gender"] for r in rows[:3]} - {"uncertain"}
    assert rows[3]["error"].startswith("silent") and rows[3]["gender"] == ""


def test_speakers_pooled_from_a_tsv_column_or_a_path_pattern(audio_files, tmp_path):
    clips = tmp_path / "corpus" / "clips"
    clips.mkdir(parents=True)
    for speaker, source in (("ann", "flac_16k"), ("ann", "mp3_48k"), ("bob", "stereo_wav_44k"),
                            ("bob", "ogg_22k"), ("bob", "silent")):
        folder = clips / speaker
        folder.mkdir(exist_ok=True)
        shutil.copy(audio_files[source], folder / os.path.basename(audio_files[source]))
    rows = ["client_id\tpath\tgender"] + [
        f"{spk}\t{spk}/{os.path.basename(audio_files[src])}\t"
        for spk, src in (("ann", "flac_16k"), ("ann", "mp3_48k"), ("bob", "stereo_wav_44k"), ("bob", "ogg_22k"),
                         ("bob", "silent"))]
    tsv = tmp_path / "corpus" / "validated.tsv"
    tsv.write_text("\n".join(rows) + "\n")
    by_column = _run("--format=jsonl", f"--file_list={tsv}", "--speaker_from=client_id")
    by_pattern = _run("--format=jsonl", f"--file_list={tsv}", "--speaker_from=([^/]+)/[^/]+$")
    for proc in (by_column, by_pattern):
        assert proc.returncode == 1 and "silent" in proc.stderr and "1 of 5 files failed" in proc.stderr
        speakers = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [s["speaker"] for s in speakers] == ["ann", "bob"]
        assert set(speakers[0]) == {"speaker", "clips", "gender", "p_female", "agreement"}
        assert [s["clips"] for s in speakers] == [2, 2]  # the silent clip is not pooled
        singles = {json.loads(line)["path"]: json.loads(line)["p_female"] for line in _run(
            "--format=jsonl", str(clips / "ann" / "voice.flac"), str(clips / "ann" / "voice.mp3")).stdout.splitlines()}
        assert speakers[0]["p_female"] == pytest.approx(np.mean(list(singles.values())), abs=1e-5)
    text = _run(f"--file_list={tsv}", "--speaker_from=client_id")
    assert text.stdout.splitlines()[0].split() == ["gender", "p_female", "clips", "agreement", "speaker"]
    bad = _run(f"--file_list={tsv}", "--speaker_from=no_group_here")
    assert bad.returncode == 2 and "needs a group" in bad.stderr


def test_the_shipped_calibration_is_applied_and_checked(audio_files, tmp_path):
    lite = classifier.Classifier()
    # The shipped model carries two fitted calibrations: one for verdicts over speech, one for whole files.
    assert lite.calibration.method != "identity" and lite.whole_file_calibration.method != "identity"
    assert lite.calibration != lite.whole_file_calibration
    waveform = lite.decode(audio_files["flac_16k"])
    p, voiced = lite.block_probabilities(waveform)
    raw = float(np.mean(p[voiced]))
    whole = lite.classify_waveform(waveform).p_female
    assert whole == pytest.approx(lite.whole_file_calibration.apply(raw), abs=1e-6)
    assert lite.verdict("x", raw, 1.0, speech_s=1.0).p_female == pytest.approx(lite.calibration.apply(raw), abs=1e-6)
    # Each calibration is part of the checksum: editing it is refused like any other setting.
    for key in export_format.CALIBRATION_KEYS:
        edited = tmp_path / key
        shutil.copytree(export_format.PRETRAINED_DIR, edited)
        info = json.loads((edited / export_format.EXPORT_METADATA).read_text())
        info[key]["params"]["temperature"] = 2.0
        (edited / export_format.EXPORT_METADATA).write_text(json.dumps(info))
        with pytest.raises(export_format.ModelDirError, match="does not match"):
            classifier.Classifier(str(edited))


@pytest.mark.parametrize("mode", [(), ("--segments",), ("--vad=none",)])
def test_jobs_keeps_the_order_the_output_and_the_exit_status(audio_files, mode):
    names = ["flac_16k", "missing", "ogg_22k", "too_short", "stereo_wav_44k", "mp3_48k"]
    files = [audio_files[n] for n in names]
    one = _run("--format=jsonl", "--chunk=4", "--batch=1", *mode, *files)
    many = _run("--format=jsonl", "--chunk=4", "--jobs=2", *mode, *files)
    assert one.returncode == many.returncode == 1, many.stderr[-2000:]
    assert many.stdout == one.stdout and many.stdout
    if not mode:  # the default verdict batches speech detection: any batch, threads or processes, one answer
        for flags in (["--batch=4"], ["--batch=3", "--jobs=2"], ["--batch=64", "--decode_workers=1"]):
            batched = _run("--format=jsonl", "--chunk=4", *flags, *files)
            assert (batched.returncode, batched.stdout) == (1, one.stdout), flags
    paths = [json.loads(line)["path"] for line in many.stdout.splitlines()]
    assert list(dict.fromkeys(paths)) == files  # every file, in input order
