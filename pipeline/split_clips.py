"""Which clips a preprocessed split holds, and where their audio is: for the steps that go back to the audio.

Calibration (``model.calibrate``) and the held-out benchmarks classify a
split's clips from their files, as ``predict`` would; the shards say which
clips (and their labels and speakers), ``metadata.json``'s sources say where.
"""

from __future__ import annotations

import dataclasses
import os

from pipeline import common_voice as cv
from pipeline import features


@dataclasses.dataclass(frozen=True)
class SplitClip:
    """One clip of a preprocessed split."""

    clip_id: str  # <locale>/<path>
    label: int
    speaker_id: str


def read_split_clips(data_dir: str, split: str) -> tuple[list[SplitClip], list[str]]:
    """The clips ``beam_jobs.preprocess`` wrote to ``split`` (sorted by id, each once), and the job's sources.

    Raises:
      FileNotFoundError: no metadata or no shards of ``split``.
      inputs.ShardError: a corrupt shard, naming it.
    """
    import tensorflow as tf

    from pipeline import examples, inputs, metadata

    meta = metadata.read_metadata(data_dir)
    files = inputs.list_shards(data_dir, split)
    ds = tf.data.TFRecordDataset(files, compression_type=features.SHARD_COMPRESSION)
    clips: dict[str, SplitClip] = {}
    for batch in inputs.iterate_checked(ds.batch(512).map(lambda s: examples.parse_blocks(s, meta.feature_set)), files):
        for clip, label, speaker in zip(batch[features.CLIP_ID_KEY].numpy(), batch[features.LABEL_KEY].numpy(),
                                        batch[features.SPEAKER_ID_KEY].numpy(), strict=True):
            clips[clip.decode()] = SplitClip(clip.decode(), int(label), speaker.decode())
    return [clips[k] for k in sorted(clips)], list(meta.sources)


def locate(clip_id: str, sources: list[str]) -> str | None:
    """The audio file of ``<locale>/<path>`` under one of the job's --cv_dir sources (a root or a locale dir)."""
    locale, path = clip_id.split("/", 1)
    for source in sources:
        for base in (os.path.join(source, locale), source):
            candidate = os.path.join(base, cv.CLIPS_DIR, path)
            if os.path.basename(base) == locale and os.path.exists(candidate):
                return candidate
    return None
