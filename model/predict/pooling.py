"""Pooling clip verdicts per speaker: shared by ``predict --speaker_from`` and ``model.label``.

A speaker's verdict is the mean of their clips' ``p_female``; ``agreement``
is the share of the clips whose own verdict matches the speaker's. The
accumulator keeps three numbers per speaker, so a file list of millions of
clips costs memory by speakers, never by clips. Nothing here imports
TensorFlow or Beam.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

from model.predict import calibration as calibration_lib
from pipeline import features


@dataclasses.dataclass(frozen=True)
class PooledVerdict:
    """One speaker's clips pooled.

    Attributes:
      speaker: the speaker's id.
      clips: clips pooled (clips that failed are not counted).
      p_female: mean of the clips' p_female.
      agreement: share of the clips whose own verdict (p >= threshold) matches the pooled one.
      threshold: the decision threshold used.
    """

    speaker: str
    clips: int
    p_female: float
    agreement: float
    threshold: float = 0.5

    @property
    def gender(self) -> str:
        return features.GENDER_NAMES[int(self.p_female >= self.threshold)]

    @property
    def confidence(self) -> float:
        return calibration_lib.confidence(self.p_female)


@dataclasses.dataclass
class _Sums:
    clips: int = 0
    p_sum: float = 0.0
    female_votes: int = 0


class SpeakerPool:
    """Accumulates clip p_female per speaker; memory grows with speakers, not clips.

    Args:
      threshold: the decision threshold (the model's).
    """

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        self._sums: dict[str, _Sums] = {}

    def add(self, speaker: str, p_female: float) -> None:
        """Adds one clip's (finite) p_female.

        Raises:
          ValueError: ``p_female`` is not a finite number in [0, 1].
        """
        if not (math.isfinite(p_female) and 0.0 <= p_female <= 1.0):
            raise ValueError(f"speaker {speaker!r}: p_female must be finite and in [0, 1], got {p_female}")
        sums = self._sums.setdefault(speaker, _Sums())
        sums.clips += 1
        sums.p_sum += p_female
        sums.female_votes += p_female >= self.threshold

    def verdicts(self) -> list[PooledVerdict]:
        """One verdict per speaker, sorted by speaker id."""
        out = []
        for speaker in sorted(self._sums):
            s = self._sums[speaker]
            p = s.p_sum / s.clips
            agreeing = s.female_votes if p >= self.threshold else s.clips - s.female_votes
            out.append(PooledVerdict(speaker, s.clips, p, agreeing / s.clips, self.threshold))
        return out


def pool(speaker: str, p_values: Iterable[float], threshold: float = 0.5) -> PooledVerdict:
    """One speaker's verdict from their clips' p_female (at least one).

    Raises:
      ValueError: no clip, or a p_female that is not finite in [0, 1].
    """
    speaker_pool = SpeakerPool(threshold)
    for p in p_values:
        speaker_pool.add(speaker, p)
    verdicts = speaker_pool.verdicts()
    if not verdicts:
        raise ValueError(f"speaker {speaker!r}: no clip to pool")
    return verdicts[0]


class SpeakerPattern:
    """Reads a speaker id from a file path with a regular expression.

    The first group (or the group named ``speaker``) is the id, searched in
    the path as given: ``'([^/]+)/[^/]+$'`` takes the parent directory,
    ``'^(\\w+)_'`` a file-name prefix.

    Raises:
      ValueError: the pattern does not compile or has no group.
    """

    def __init__(self, pattern: str):
        try:
            self._regex = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"--speaker_from {pattern!r}: not a regular expression ({e})") from None
        if self._regex.groups < 1:
            raise ValueError(f"--speaker_from {pattern!r}: needs a group around the speaker id, "
                             "e.g. '([^/]+)/[^/]+$' for the parent directory")
        self.pattern = pattern

    def speaker(self, path: str) -> str | None:
        """The id in ``path``, or None when the pattern does not match it."""
        match = self._regex.search(path)
        if match is None:
            return None
        return match.group("speaker") if "speaker" in self._regex.groupindex else match.group(1)
