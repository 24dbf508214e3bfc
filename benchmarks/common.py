"""What the benchmarks share: the corpus they measure on, the seed's features, CPU and memory meters, the JSON line.

Every benchmark runs as ``python -m benchmarks.<name>`` from the repository
root and prints one JSON object (or list) as its last line. Real speech comes
from ``../shared/data`` when it is there; otherwise the benchmarks that need
clips generate them with the built-in synthetic corpus, so each one also runs
on a machine without the data (the smoke tests in ``tests/benchmarks`` do).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
from typing import Any

import numpy as np

from beam_jobs import sample_corpus
from pipeline import common_voice as cv
from pipeline import features, split_clips

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "commonvoice-6.1-sample")
# A generated clip smaller than this is one of the sample corpus's bad rows (corrupt, empty, too short,
# silent), not a voice worth timing.
_MIN_SYNTHETIC_BYTES = 10_000
# The seed article's hop as a duration (8 ms): it takes the STFT at each clip's own rate.
_SEED_STEP_S = features.STFT_SEED.frame_step / features.STFT_SEED.sample_rate
# The peer baseline, inaSpeechSegmenter's whole pipeline, in its own virtualenv (benchmarks/peers/setup_ina.sh).
PEER = "inaSpeechSegmenter"
PEER_PYTHON = os.path.join(REPO, ".venv-ina", "bin", "python")
PEER_SCRIPT = os.path.join(REPO, "benchmarks", "peers", "ina_peer.py")
PEER_MISSING = f"{PEER} not run: no {PEER_PYTHON} (make it with `bash benchmarks/peers/setup_ina.sh`)"


def peer_scores(paths: list[str | None]) -> np.ndarray:
    """inaSpeechSegmenter's p_female (female share of its speech time) of each path (NaN: no answer or no path).

    Raises:
      RuntimeError: the peer's process failed as a whole (one bad file is a NaN, not a failure).
    """
    given = [p for p in paths if p is not None]
    proc = subprocess.run([PEER_PYTHON, PEER_SCRIPT], input="\n".join(given) + "\n", capture_output=True,
                          text=True, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        raise RuntimeError(f"{PEER} failed (status {proc.returncode}): {proc.stderr[-2000:]}")
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    by_path = {r["path"]: r.get("p_female") for r in records}
    return np.array([np.nan if by_path.get(p) is None else by_path[p] for p in paths], np.float64)


def named_exports(specs: list[str]) -> dict[str, str]:
    """``--model=name=export_dir`` flags as {name: export_dir}, in order.

    Raises:
      app.UsageError: a spec without ``name=``, or a name given twice.
    """
    from absl import app

    named: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name:
            raise app.UsageError(f"--model={spec}: give name=export_dir")
        if name in named:
            raise app.UsageError(f"--model={spec}: the name {name!r} is given twice")
        named[name] = path
    return named


def unanswered_as_wrong(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``p`` with each NaN (a clip without an answer) put on the wrong side of the threshold for its label."""
    return np.where(np.isnan(p), 1.0 - labels, p)


def corpus_present(path: str) -> bool:
    """Whether ``path`` is a Common Voice release root with at least one locale's validated.tsv."""
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, locale, cv.VALIDATED_TSV)) for locale in os.listdir(path))


def labelled_clips(locale_dir: str) -> list[cv.Clip]:
    """The male and female clips of one locale's validated.tsv, in file order (the project's parser)."""
    with open(os.path.join(locale_dir, cv.VALIDATED_TSV), encoding="utf-8", newline="") as f:
        return [c for c in cv.parse_validated_tsv(f, locale_dir) if isinstance(c, cv.Clip)]


def pick_real_clips(data_dir: str, n: int) -> list[cv.Clip]:
    """Up to n/2 male and n/2 female clips from every locale of ``data_dir``, one clip per speaker.

    Args:
      data_dir: a Common Voice release root.
      n: clips wanted.

    Returns:
      The male clips, then the female ones; only clips whose audio file exists.
    """
    by_label: dict[int, list[cv.Clip]] = {features.MALE: [], features.FEMALE: []}
    seen: set[str] = set()
    for locale in sorted(os.listdir(data_dir)):
        locale_dir = os.path.join(data_dir, locale)
        if not os.path.exists(os.path.join(locale_dir, cv.VALIDATED_TSV)):
            continue
        for clip in labelled_clips(locale_dir):
            if clip.speaker_id not in seen and os.path.exists(clip.audio_path):
                seen.add(clip.speaker_id)
                by_label[clip.label].append(clip)
    half = n // 2
    return by_label[features.MALE][:half] + by_label[features.FEMALE][:half]


def synthetic_clips(root: str, n: int) -> list[cv.Clip]:
    """Writes the built-in synthetic corpus under ``root`` (3-6 s clips) and returns ``n`` of its good clips."""
    per_gender = max(1, n // 4)  # 2 locales x 2 genders
    sample_corpus.make_corpus(root, speakers_per_gender=per_gender, clips_per_speaker=1, seconds_range=(3.0, 6.0))
    clips = []
    for locale in sorted(os.listdir(root)):
        clips += [c for c in labelled_clips(os.path.join(root, locale))
                  if os.path.exists(c.audio_path) and os.path.getsize(c.audio_path) > _MIN_SYNTHETIC_BYTES]
    return clips[:n]


def load_clips(data_dir: str, n: int, tmp: str) -> tuple[list[cv.Clip], str]:
    """Real clips from ``data_dir`` when it holds a corpus, else generated ones under ``tmp``.

    Returns:
      The clips and a description of where they came from (printed and kept in the JSON line).
    """
    if corpus_present(data_dir):
        return pick_real_clips(data_dir, n), f"real Common Voice MP3s from {os.path.normpath(data_dir)}"
    return synthetic_clips(os.path.join(tmp, "synthetic"), n), "generated clips (../shared/data absent)"


def write_corpus(root: str, clips: list[cv.Clip]) -> str:
    """A one-locale Common Voice directory listing exactly these clips; returns the locale dir.

    The clips are copied: the job rejects a symlink that resolves outside its
    locale's ``clips/`` (``path_outside_clips``).
    """
    locale = os.path.join(root, "bench")
    os.makedirs(os.path.join(locale, cv.CLIPS_DIR), exist_ok=True)
    with open(os.path.join(locale, cv.VALIDATED_TSV), "w", encoding="utf-8") as f:
        f.write("\t".join(sample_corpus.OLD_HEADER) + "\n")
        for i, clip in enumerate(clips):
            name = f"{i:05d}_{os.path.basename(clip.audio_path)}"
            shutil.copyfile(clip.audio_path, os.path.join(locale, cv.CLIPS_DIR, name))
            values = {"client_id": clip.speaker_id, "path": name, "sentence": "x", "up_votes": "2",
                      "down_votes": "0", "gender": features.GENDER_NAMES[clip.label], "locale": "bench"}
            f.write("\t".join(values.get(column, "") for column in sample_corpus.OLD_HEADER) + "\n")
    return locale


def seed_blocks(wave: np.ndarray, rate: int) -> np.ndarray:
    """The seed article's ``audioToTensor`` after decoding, faithfully (its cost is what is measured).

    ``abs(real(stft))`` with 1024-sample frames and an 8 ms hop at ``rate``,
    cut into 100-frame blocks by the article's loop (which leaves the last
    block zero when the frames divide evenly).

    Args:
      wave: mono float32 samples.
      rate: their sample rate.

    Returns:
      ``[blocks, 100, 513]`` float64 blocks.
    """
    import tensorflow as tf

    fs = features.STFT_SEED
    stft = tf.signal.stft(tf.convert_to_tensor(wave), frame_length=fs.frame_length, frame_step=int(rate * _SEED_STEP_S))
    spect = tf.abs(tf.math.real(stft))
    parts = np.zeros((len(spect) // fs.block_frames, fs.block_frames, fs.num_bins))
    for i, start in enumerate(range(0, len(spect) - fs.block_frames, fs.block_frames)):
        parts[i] = spect[start: start + fs.block_frames]
    return parts


def held_out_clips(data_dir: str, split: str) -> tuple[dict[str, int], list[str]]:
    """The clips a preprocessed directory wrote to ``split``: (clip_id -> label, the job's --cv_dir sources)."""
    clips, sources = split_clips.read_split_clips(data_dir, split)
    return {c.clip_id: c.label for c in clips}, sources


locate = split_clips.locate


def process_cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished, waited-for children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants; keeps the peaks.

    Use as a context manager around the process's lifetime; ``peak_bytes`` holds
    the largest sum seen, ``peak_root_bytes`` the process's own largest RSS,
    ``peak_child_bytes`` the largest RSS of any one descendant (a worker), and
    ``peak_disk_bytes`` the most bytes seen at once in the directories under
    ``disk_root`` whose names start with ``disk_prefix`` (spill files), when given, and
    in the directories under those starting with ``nested_prefix`` (a windowed job's windows).
    """

    def __init__(self, pid: int, interval_s: float = 0.2, disk_root: str | None = None, disk_prefix: str = "",
                 nested_prefix: str | None = None):
        self._pid, self._interval = pid, interval_s
        self._disk_root, self._disk_prefix, self._nested_prefix = disk_root, disk_prefix, nested_prefix
        self.peak_bytes = self.peak_root_bytes = self.peak_child_bytes = self.peak_disk_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
        tree, todo = [], [self._pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def _rss(self) -> int:
        total = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/statm") as f:
                    rss = int(f.read().split()[1]) * self._page
            except (OSError, IndexError, ValueError):
                continue  # the process ended between listing and reading
            total += rss
            if pid == self._pid:
                self.peak_root_bytes = max(self.peak_root_bytes, rss)
            else:
                self.peak_child_bytes = max(self.peak_child_bytes, rss)
        return total

    def _matching_dirs(self) -> list[str]:
        try:
            names = os.listdir(self._disk_root)
        except OSError:
            return []
        found = [os.path.join(self._disk_root, n) for n in names if n.startswith(self._disk_prefix)]
        for parent in (n for n in names if self._nested_prefix and n.startswith(self._nested_prefix)):
            try:  # one level down too: a windowed job's windows hold their own spill directories
                found += [os.path.join(self._disk_root, parent, n)
                          for n in os.listdir(os.path.join(self._disk_root, parent)) if n.startswith(self._disk_prefix)]
            except OSError:
                continue
        return found

    def _disk(self) -> int:
        total = 0
        for directory in self._matching_dirs():
            for d, _, files in os.walk(directory):
                for f in files:
                    try:
                        total += os.path.getsize(os.path.join(d, f))
                    except OSError:
                        pass  # deleted while walking
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._rss())
            if self._disk_root:
                self.peak_disk_bytes = max(self.peak_disk_bytes, self._disk())
            self._stop.wait(self._interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def print_json(result: Any, digits: int | None = None) -> None:
    """Prints ``result`` as the benchmark's last line: one JSON value.

    Args:
      result: a dict or list of JSON-able values (numpy scalars are written as floats).
      digits: when given, the dict's top-level floats are rounded to this many digits.
    """
    if digits is not None and isinstance(result, dict):
        result = {k: round(v, digits) if isinstance(v, float) else v for k, v in result.items()}
    print(json.dumps(result, default=float), flush=True)
