"""``voicegender evaluate``'s typed config: the one declaration of its settings (its flags derive from it)."""

from __future__ import annotations

import dataclasses

from pipeline import config_flags, features


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What evaluating a run on a split needs.

    Attributes:
      model_dir: a finished `python -m model.train` run.
      data_dir: output of beam_jobs.preprocess with the model's features.
      split: split to evaluate.
      batch_size: blocks per inference batch.
      attributes: an attribute TSV (a `path` column and one column per attribute, e.g. emotion) to break
        results down by, besides those found beside the data's sources; repeatable.
    """

    model_dir: str
    data_dir: str
    split: str = dataclasses.field(default=features.TEST, metadata=config_flags.flag_options(choices=features.SPLITS))
    batch_size: int = 256
    attributes: tuple[str, ...] = dataclasses.field(default=(), metadata=config_flags.flag_options(multi=True))

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be at least 1, got {self.batch_size}")
