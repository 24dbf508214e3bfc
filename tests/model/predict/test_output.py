"""predict's output formats; RTTM lines parse as the diarization standard's SPEAKER records."""

from __future__ import annotations

import io

import pytest

from model.predict import output, segments


def _result(path="dir/my talk.wav"):
    return segments.FileSegments(path, (
        segments.Segment(0.0, 1.25, segments.SILENCE),
        segments.Segment(1.25, 4.5, segments.SPEECH, "female", 0.93),
        segments.Segment(4.5, 5.0, segments.NON_SPEECH),
        segments.Segment(5.0, 7.125, segments.SPEECH, "male", 0.42),
    ))


def test_rttm_lines_are_speaker_records_of_the_speech():
    out, errors = io.StringIO(), io.StringIO()
    writer = output.Writer("rttm", out, records="segment", errors=errors)
    writer.segments(_result(), min_confidence=0.6)
    writer.segments(segments.FileSegments("gone.wav", error="missing_file: gone.wav: no such file"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # speech only, no header
    parsed = [line.split(" ") for line in lines]
    for fields in parsed:
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[2] == "1"
        assert fields[5:7] == ["<NA>", "<NA>"] and fields[8:] == ["<NA>", "<NA>"]
    assert [(f[1], float(f[3]), float(f[4]), f[7]) for f in parsed] == [
        ("my_talk", 1.25, 3.25, "female"), ("my_talk", 5.0, 2.125, "uncertain")]  # 0.58 < 0.6: uncertain
    assert errors.getvalue() == "gone.wav: missing_file: gone.wav: no such file\n"


def test_rttm_needs_segments():
    with pytest.raises(ValueError, match="add --segments"):
        output.Writer("rttm", io.StringIO(), records="file")
    from model.predict.config import PredictConfig

    with pytest.raises(ValueError, match="add --segments"):
        PredictConfig(format="rttm")
    assert PredictConfig(format="rttm", segments=True).format == "rttm"


def test_rttm_file_ids_have_no_whitespace():
    assert output.rttm_file_id("/a/b/my talk.wav") == "my_talk"
    assert output.rttm_file_id("/a/ .wav") == "recording"
