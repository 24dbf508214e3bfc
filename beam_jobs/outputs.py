"""The output directory's housekeeping: the write probe, ``--overwrite`` by manifest, and the manifest itself.

A run refuses to mix its shards with another run's; ``--overwrite`` deletes
exactly the files the previous run's manifest lists (and Beam's temp
folders), never a user's own file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from beam_jobs import runner
from beam_jobs.config import PreprocessConfig
from beam_jobs.summary import SUMMARY_FILENAME
from beam_jobs.write import INCOMPLETE_METADATA_FILENAME
from pipeline import common_voice as cv
from pipeline import features

# The run's own record of what it wrote: ``--overwrite`` deletes these files and nothing else.
MANIFEST_FILENAME = "voicegender-manifest.json"
# Every name the job writes (user files never match: the shard and rejected
# names carry exact zero-padded counters).
OUTPUT_PATTERNS = tuple(
    f"{split}-?????-of-?????{features.SHARD_SUFFIX}" for split in features.SPLITS
) + (
    f"{features.REJECTED_PREFIX}-?????-of-?????.tsv",
    features.METADATA_FILENAME,
    INCOMPLETE_METADATA_FILENAME,
    SUMMARY_FILENAME,
)
BEAM_TEMP_PATTERNS = ("beam-temp-*", "beam-temp-*/*")  # text sinks' scratch (a prefix on GCS)


def _matching(output_dir: str, patterns: Sequence[str]) -> set[str]:
    results = FileSystems.match([cv.join(output_dir, p) for p in patterns])
    return {m.path for result in results for m in result.metadata_list}


def check_output_writable(output_dir: str, flag: str = "--output_dir") -> None:
    """Creates ``output_dir`` if needed and proves a file can be written there.

    Args:
      output_dir: the directory.
      flag: the flag that named it, for the message.

    Raises:
      JobError: the path is a file, or cannot be created or written (read-only,
        permissions), with the system's reason.
    """
    if "://" not in output_dir and os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise runner.JobError(f"{flag} {output_dir} is a file, not a directory")
    probe = cv.join(output_dir, ".voicegender-write-test")
    try:
        FileSystems.mkdirs(output_dir)
    except Exception:  # noqa: BLE001 (BeamIOError when it exists; if it cannot be made, the probe says why)
        pass
    try:
        with FileSystems.create(probe) as f:
            f.write(b"")
        FileSystems.delete([probe])
    except Exception as e:  # noqa: BLE001 (OSError locally, BeamIOError on GCS)
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [""])[0][:200]
        raise runner.JobError(f"{flag} {output_dir}: cannot write there ({reason})") from None


def prepare_output(config: PreprocessConfig) -> set[str]:
    """Refuses to mix runs in one directory; with ``overwrite``, deletes what an earlier run's manifest lists.

    Returns:
      The files left in ``output_dir`` (the user's own, with ``overwrite``).

    Raises:
      JobError: output_dir is not writable, or holds files and ``overwrite``
        is off, or holds files but no manifest (they are not this job's to delete).
    """
    out = config.output_dir
    check_output_writable(out)
    existing = _matching(out, ["*"])
    if not existing:
        return set()
    if not config.overwrite:
        raise runner.JobError(
            f"--output_dir {out} is not empty ({len(existing)} files, e.g. {sorted(existing)[0]}); old and new "
            "shards would mix. Choose another directory or pass --overwrite to replace this job's earlier outputs."
        )
    manifest = cv.join(out, MANIFEST_FILENAME)
    if not FileSystems.exists(manifest):
        raise runner.JobError(f"--overwrite: {out} holds files but no {MANIFEST_FILENAME}, so none of them is known to "
                       "be this job's output; nothing was deleted. Remove them yourself or choose another directory.")
    with FileSystems.open(manifest) as f:
        listed = {cv.join(out, name) for name in json.loads(f.read())["files"]}
    doomed = sorted((listed & existing) | _matching(out, BEAM_TEMP_PATTERNS)) + [manifest]
    logging.info("--overwrite: deleting %d files an earlier run wrote in %s", len(doomed), out)
    FileSystems.delete(doomed)
    return existing - set(doomed)


def finish_output(output_dir: str, before: set[str]) -> None:
    """Removes Beam's temp folders and writes the manifest of what this run wrote (also after a failure).

    Args:
      output_dir: the job's output directory.
      before: the files it held before the run (``prepare_output``'s result).
    """
    temp = _matching(output_dir, BEAM_TEMP_PATTERNS)
    if temp:
        FileSystems.delete(sorted(temp))
    written = _matching(output_dir, OUTPUT_PATTERNS) - before
    with FileSystems.create(cv.join(output_dir, MANIFEST_FILENAME)) as f:
        names = sorted(path.rsplit("/", 1)[-1] for path in written)
        f.write(json.dumps({"files": names}, indent=1).encode("utf-8"))
