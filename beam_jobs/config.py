"""The preprocessing job's typed config: the one declaration of each of its settings.

The mains derive their flags from these dataclasses (``pipeline.config_flags``):
the flag is the field's name unless ``flag_options`` renames it, its default is
the field's, its help the field's entry under ``Attributes:``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline import config_flags, features


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Everything the preprocessing job needs; built once from flags in ``preprocess.main``.

    Attributes:
      cv_dirs: locale directories (validated.tsv + clips/) or release roots,
        local or gs://; one ``--cv_dir`` each.
      output_dir: where the TFRecord shards, rejected-*.tsv and metadata.json go.
      feature_set: spectrogram parameters (block length included); from
        ``--features`` and ``--block_frames``.
      split_fractions: (train, validation, test) fractions of speakers.
      use_official_splits: use the release's train/dev/test.tsv instead of
        hashing speakers.
      max_clips_per_speaker: clips kept per client_id (0: all).
      max_blocks_per_clip: voiced blocks kept per clip, evenly spaced (0: all).
      balance_clips: balance genders by clips before decoding (drops clips
        of the larger gender); blocks are balanced either way. Off
        (``--nobalance_clips``) keeps every clip's voice in the data (more
        speakers of the larger gender, fewer blocks each).
      seed: drives every random choice (split, caps, balance, order).
      limit_clips: keep only this many labelled clips (0: all), for quick runs.
      target_shard_mb: uncompressed megabytes per output shard.
      overwrite: replace the outputs of an earlier run in output_dir.
      max_clip_seconds: longer clips are rejected as ``too_long``, judged from
        the file's header before decoding (Common Voice clips last <= 10 s).
      augment_copies: extra copies of each train clip with its F0 raised
        (1.1-1.6x, at most +100 Hz by default, formants kept) and more vocal effort
        (flatter tilt, more level, faster), written as train records marked
        in ``augmentation``; validation and test are never augmented.
      augment_fraction: the share of train clips that get the copies (a
        seeded choice per clip); less weight on the augmented voices.
      augment_max_f0_factor: the highest F0 factor of a raised copy (the
        lowest is 1.1).
      augment_max_f0_rise_hz: the most a raised copy's median F0 may rise.
      window_clips: a local run over more rows of validated.tsv than this runs in
        passes over disjoint sets of speakers of about this many clips each,
        merged into one output, so its memory is bounded by a window, not the
        release (``beam_jobs.windows``); 0: one pass. Remote runners (Dataflow,
        Dask), a gs:// output and ``limit_clips`` always run one pass.
      augment_female_lowered: the share of women's copies (a seeded choice
        per copy) that get their F0 lowered instead (0.65-0.9x, median kept
        >= 120 Hz, formants kept), a steeper tilt, less level and slower
        speech, as in sad or subdued speech; men's copies are always raised.
    """

    cv_dirs: tuple[str, ...] = dataclasses.field(metadata=config_flags.flag_options(name="cv_dir", multi=True))
    output_dir: str
    feature_set: features.FeatureSet = features.LOG_MEL
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    use_official_splits: bool = False
    max_clips_per_speaker: int = 20
    max_blocks_per_clip: int = 10
    balance_clips: bool = True
    seed: int = 42
    limit_clips: int = 0
    target_shard_mb: float = 128.0
    overwrite: bool = False
    max_clip_seconds: float = 120.0
    augment_copies: int = 0
    augment_fraction: float = 1.0
    augment_max_f0_factor: float = 1.6
    augment_max_f0_rise_hz: float = 100.0
    augment_female_lowered: float = 0.0
    window_clips: int = 12_500

    def __post_init__(self):
        if not self.cv_dirs:
            raise ValueError("at least one --cv_dir is needed")
        if not self.output_dir:
            raise ValueError("--output_dir is needed")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions):
            raise ValueError(f"split fractions must be 3 non-negative numbers, got {self.split_fractions}")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {self.split_fractions}")
        if self.target_shard_mb <= 0:
            raise ValueError("target_shard_mb must be positive")
        if self.max_clip_seconds <= 0:
            raise ValueError("max_clip_seconds must be positive")
        if not 0.0 <= self.augment_fraction <= 1.0:
            raise ValueError(f"augment_fraction must be in [0, 1], got {self.augment_fraction}")
        if not 0.0 <= self.augment_female_lowered <= 1.0:
            raise ValueError(f"augment_female_lowered must be in [0, 1], got {self.augment_female_lowered}")
        if not 1.1 <= self.augment_max_f0_factor <= 2.5 or self.augment_max_f0_rise_hz <= 0:
            raise ValueError(f"augment_max_f0_factor must be in [1.1, 2.5] and augment_max_f0_rise_hz positive, got "
                             f"{self.augment_max_f0_factor} and {self.augment_max_f0_rise_hz}")
        if self.window_clips < 0:
            raise ValueError(f"window_clips must be >= 0, got {self.window_clips}")
        if self.augment_copies < 0:
            raise ValueError(f"augment_copies must be >= 0, got {self.augment_copies}")
        if self.augment_copies and self.feature_set.sample_rate != features.AUGMENT_SAMPLE_RATE:
            raise ValueError(f"augment_copies needs {features.AUGMENT_SAMPLE_RATE} Hz features "
                             f"(--features=log_mel), not {self.feature_set.sample_rate} Hz")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["feature_set"] = self.feature_set.name
        return d
