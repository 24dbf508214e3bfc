"""BalanceClips and BalanceBlocks: equal male and female shares in every split.

Neither transform holds a split in memory: each counts its groups with a
combiner, then keeps every element of the larger gender with probability
``smaller / larger`` decided by a seeded hash of the element (a side input
carries the counts). The result is deterministic for a seed and balanced up to
binomial noise (about ``sqrt(n)`` elements). Every clip a balance drops whole
is listed on the ``REJECTED`` output with its reason, so rejected-*.tsv
accounts for every labelled clip that is not in the shards.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from beam_jobs.decode import DecodedClip
from beam_jobs.read import split_label_key
from beam_jobs.rejections import REJECTED, reject
from beam_jobs.spill import SpillRef
from pipeline import common_voice as cv
from pipeline import features


def keep_probabilities(counts: dict[str, int]) -> dict[str, float]:
    """Per ``split/gender`` key, the keep probability that balances its split.

    Args:
      counts: elements per ``split/gender`` key.

    Returns:
      ``min(count over the split's genders) / count`` per key; a split with one
      gender only gets probability 0 (it cannot be balanced).
    """
    by_split: dict[str, list[int]] = {}
    for key, count in counts.items():
        by_split.setdefault(key.split("/")[0], []).append(count)
    probabilities = {}
    for key, count in counts.items():
        split_counts = by_split[key.split("/")[0]]
        smallest = min(split_counts) if len(split_counts) == 2 else 0
        probabilities[key] = smallest / count if count else 0.0
    return probabilities


DROPPED_BY_CLIP_BALANCE = "dropped_by_clip_balance"
DROPPED_BY_BLOCK_BALANCE = "dropped_by_block_balance"


def _balance_detail(split: str, label: int, p: float, unit: str) -> str:
    gender = features.GENDER_NAMES[label] if label in (features.MALE, features.FEMALE) else str(label)
    if p == 0:
        return f"split {split} has no {unit} of the other gender, so none of its {gender} {unit} can be balanced"
    return f"split {split}: {gender} {unit} kept with probability {p:.3f} to match the other gender"


def _sample_clip(kv, probabilities: dict[str, float], seed: str):
    split, clip = kv
    p = probabilities[split_label_key(split, clip.label)]
    if cv.stable_fraction("clip", seed, clip.clip_id) < p:
        yield kv
    else:
        yield reject(clip.clip_id, DROPPED_BY_CLIP_BALANCE, _balance_detail(split, clip.label, p, "clips"))


class BalanceClips(beam.PTransform):
    """(split, Clip) -> (the same with genders balanced per split by clip count, Rejections of the dropped).

    Done before decoding so the clips it drops are never decoded.
    """

    def __init__(self, seed: int):
        super().__init__()
        self._seed = str(seed)

    def expand(self, keyed_clips):
        seed = self._seed
        counts = (
            keyed_clips
            | "GroupKey" >> beam.Map(lambda kv: split_label_key(kv[0], kv[1].label))
            | "Count" >> beam.combiners.Count.PerElement()
        )
        probabilities = beam.pvalue.AsSingleton(
            counts | "ToDict" >> beam.combiners.ToDict() | "Probabilities" >> beam.Map(keep_probabilities)
        )
        outputs = keyed_clips | "Sample" >> beam.FlatMap(_sample_clip, probabilities, seed).with_outputs(
            REJECTED, main="kept")
        return outputs.kept, outputs[REJECTED]


@dataclasses.dataclass(frozen=True)
class KeptBlocks:
    """Which blocks of a decoded clip are kept, and where they wait: small.

    Attributes:
      split: the clip's split.
      clip: the clip's TSV row.
      block_indices: positions of the kept blocks in the clip.
      seconds: the clip's decoded duration.
      spill: where the decoded clip's blocks were spilled.
      slots: per kept block, its position in ``spill`` (parallel to
        ``block_indices``).
    """

    split: str
    clip: cv.Clip
    block_indices: tuple[int, ...]
    seconds: float
    spill: SpillRef | None = None
    slots: tuple[int, ...] = ()


def _sample_blocks(item: DecodedClip, probabilities: dict[str, float], seed: str):
    p = probabilities[split_label_key(item.split, item.clip.label)]
    kept = [(slot, i) for slot, i in enumerate(item.block_indices)
            if cv.stable_fraction("block", seed, item.clip.clip_id, str(i)) < p]
    if kept:
        yield KeptBlocks(item.split, item.clip, tuple(i for _, i in kept), item.seconds, item.spill,
                         tuple(slot for slot, _ in kept))
    else:
        yield reject(item.clip.clip_id, DROPPED_BY_BLOCK_BALANCE,
                     _balance_detail(item.split, item.clip.label, p, "blocks") + f" (none of its "
                     f"{len(item.block_indices)} kept)")


class BalanceBlocks(beam.PTransform):
    """DecodedClip -> (KeptBlocks with equal block counts per gender in each split, Rejections of clips left empty).

    Clip balance alone would leave block counts unequal wherever one gender's
    clips are longer; this evens the blocks, which is what the model sees.
    Only block indices flow through here (the spectrograms wait in spill
    files), so the side input of counts never meets big data: Beam 2.77's
    local runner loses elements when a stage with a side input reads a
    multi-gigabyte main input (reproduced in WORKSPACE.md).
    """

    def __init__(self, seed: int):
        super().__init__()
        self._seed = str(seed)

    def expand(self, decoded):
        counts = (
            decoded
            | "BlocksPerGroup" >> beam.Map(lambda c: (split_label_key(c.split, c.clip.label), len(c.block_indices)))
            | "Sum" >> beam.CombinePerKey(sum)
        )
        probabilities = beam.pvalue.AsSingleton(
            counts | "ToDict" >> beam.combiners.ToDict() | "Probabilities" >> beam.Map(keep_probabilities)
        )
        outputs = decoded | "Sample" >> beam.FlatMap(_sample_blocks, probabilities, self._seed).with_outputs(
            REJECTED, main="kept")
        return outputs.kept, outputs[REJECTED]
