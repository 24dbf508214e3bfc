"""The labelling job's typed config: the one declaration of each of its settings (flags derive from it)."""

from __future__ import annotations

import dataclasses

from pipeline import config_flags


@dataclasses.dataclass(frozen=True)
class LabelClipsConfig:
    """Everything the labelling job needs; built once from flags in ``model.label.cli.main``.

    Attributes:
      cv_dirs: locale directories or release roots, local or gs://; one
        ``--cv_dir`` each.
      output: directory for the clips/speakers/mislabels/rejected TSVs.
      model_dir: an ``export/`` with ``model.tflite`` (local or gs://);
        default: the pretrained model.
      score_labelled: also score labelled clips, and list likely mislabels.
      mislabel_confidence: confidence a prediction needs to call a label into
        question.
      limit_clips: score only this many clips (0: all); for quick runs.
      seed: seed of ``--limit_clips``'s choice.
    """

    cv_dirs: tuple[str, ...] = dataclasses.field(metadata=config_flags.flag_options(name="cv_dir", multi=True))
    output: str
    model_dir: str | None = None
    score_labelled: bool = False
    mislabel_confidence: float = 0.9
    limit_clips: int = 0
    seed: int = 42

    def __post_init__(self):
        if not self.cv_dirs or not self.output:
            raise ValueError("--cv_dir and --output are required")
