"""Progress of long runs: worker files summed, the line's figures, live on a terminal, logged otherwise."""

import io
import logging

from beam_jobs import progress


def test_progress_files_are_summed_and_totals_shared(tmp_path):
    a, b = progress.ProgressFile(str(tmp_path)), progress.ProgressFile(str(tmp_path))
    for f, decoded in ((a, 3), (b, 4)):
        f.set(progress.CLIPS_TO_DECODE, 100)
        for _ in range(decoded):
            f.add(progress.CLIPS_DECODED)
        f.add(progress.CLIPS_FAILED)
        f.flush()
    assert progress.read_counts(str(tmp_path)) == {
        progress.CLIPS_TO_DECODE: 100, progress.CLIPS_DECODED: 7, progress.CLIPS_FAILED: 2}
    progress.ProgressFile(None).add(progress.CLIPS_DECODED)  # remote runners: a no-op


def test_describe_gives_done_total_rate_and_eta():
    counts = {progress.CLIPS_TO_DECODE: 1000, progress.CLIPS_DECODED: 240, progress.CLIPS_FAILED: 10}
    line = progress.describe(counts, elapsed_s=75, decode_started_s=50.0, now_s=75.0)
    # 250 clips in 25 s: 10 clips/s, 750 left: 75 s.
    assert line == "[1:15] decoded 250/1,000 clips (25%), 10 rejected, 10.0 clips/s, ETA 1:15"
    assert progress.describe({}, 3, None, 3) == "[0:03] reading and planning clips"
    done = {**counts, progress.CLIPS_DECODED: 990, progress.SHARDS_PLANNED: 4, progress.SHARDS_WRITTEN: 1}
    assert "ETA" not in progress.describe(done, 3700, 0.0, 100.0)
    assert progress.describe(done, 3700, 0.0, 100.0).startswith("[1:01:40] decoded 1,000/1,000 clips (100%)")
    assert progress.describe(done, 3700, 0.0, 100.0).endswith("shards written 1/4")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_reporter_rewrites_one_live_line_on_a_terminal():
    stream = FakeTerminal()
    reporter = progress.ProgressReporter(stream=stream, tty_interval_s=0.01)
    f = progress.ProgressFile(reporter.progress_dir)
    f.set(progress.CLIPS_TO_DECODE, 2)
    f.add(progress.CLIPS_DECODED, 2)
    f.flush()
    reporter.start()
    reporter.stop()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, rewritten in place
    assert "\r" in text and "decoded 2/2 clips (100%)" in text


def test_reporter_logs_lines_when_not_a_terminal(caplog):
    stream = io.StringIO()
    reporter = progress.ProgressReporter(stream=stream, log_interval_s=0.01)
    f = progress.ProgressFile(reporter.progress_dir)
    f.set(progress.CLIPS_TO_DECODE, 4)
    f.add(progress.CLIPS_DECODED, 1)
    f.flush()
    with caplog.at_level(logging.INFO):
        reporter.start()
        import time

        time.sleep(0.1)
        reporter.stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress:")]
    assert len(lines) >= 2 and all("decoded 1/4 clips (25%)" in line for line in lines)
    assert stream.getvalue() == ""  # nothing raw on a log stream
