"""benchmarks.scale's own parts: the replicated corpus and the process-tree memory sampler."""

import os
import subprocess
import sys
import time

from beam_jobs import common_voice as cv
from benchmarks import scale


def test_replicated_corpus_has_new_speakers_and_the_same_clips(corpus_dir, tmp_path):
    corpus = scale.labelled_rows(corpus_dir, 1.0)
    root = scale.replicate(corpus, 3, str(tmp_path / "x3"))
    locales = sorted(os.listdir(root))
    assert len(locales) == 3 * len(corpus)
    speakers = set()
    for locale in locales:
        with open(os.path.join(root, locale, cv.VALIDATED_TSV), encoding="utf-8", newline="") as f:
            clips = list(cv.parse_validated_tsv(f, os.path.join(root, locale)))
        good = [c for c in clips if isinstance(c, cv.Clip)]
        original = os.path.join(corpus_dir, locale.rsplit("_x", 1)[0], cv.CLIPS_DIR)
        assert good and all(os.path.exists(c.audio_path) == os.path.exists(os.path.join(original,
                            os.path.basename(c.audio_path))) for c in good)
        speakers |= {c.speaker_id for c in good}
    one_copy = {c.speaker_id for c in cv.parse_validated_tsv(
        open(os.path.join(corpus_dir, "en", cv.VALIDATED_TSV), encoding="utf-8", newline=""),
        os.path.join(corpus_dir, "en")) if isinstance(c, cv.Clip)}
    assert len(speakers) >= 3 * len(one_copy)  # every copy speaks with new voices


def test_tree_memory_sums_children():
    code = "import time; x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {code!r}])"])
    with scale.TreeMemory(parent.pid, interval_s=0.05) as memory:
        parent.wait()
        time.sleep(0.05)
    assert memory.peak_bytes > 200 * 2**20  # the grandchild's 200 MiB is counted
