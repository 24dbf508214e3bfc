"""The one owner of every fact about the data format.

Feature keys, dtypes, shapes, the label encoding, split names, file names and
the spectrogram parameters of each feature set live here and nowhere else. The
Beam writer, the tf.data parser and the serving signature all import them, so a
change here changes every reader and writer at once (like TFX
``models/features.py``).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

# Bumped whenever the record layout or metadata schema changes incompatibly.
# 2: shards are uncompressed (1 was GZIP; see SHARD_COMPRESSION).
FORMAT_VERSION = 2

# --- tf.train.Example keys (the public contract of the TFRecords) ---
BLOCK_KEY = "block"  # bytes: little-endian float32, shape FeatureSet.block_shape
LABEL_KEY = "label"  # int64: 0 male, 1 female
CLIP_ID_KEY = "clip_id"  # bytes: "<locale>/<path>"
SPEAKER_ID_KEY = "speaker_id"  # bytes: Common Voice client_id
BLOCK_INDEX_KEY = "block_index"  # int64: position of the block in its clip
AGE_KEY = "age"  # bytes: the TSV's age, "" when absent (for fairness views)
ACCENT_KEY = "accent"  # bytes: the TSV's accent(s), "" when absent
# bytes: "" for a recorded block; for a block of an augmented train copy (pipeline.waveform_augment), the copy's
# spec tag, e.g. "f0x1.30_tilt3_gain6_tempo1.10". An optional key: readers of older shards fill in "".
AUGMENTATION_KEY = "augmentation"

BLOCK_DTYPE = "float32"  # storage dtype of BLOCK_KEY


@dataclasses.dataclass(frozen=True)
class RecordField:
    """One feature of a block's ``tf.train.Example``.

    Attributes:
      key: the feature's key in the record.
      dtype: ``bytes`` or ``int64`` (a one-element ``bytes_list`` / ``int64_list``).
      default: the value a reader fills in when the record lacks the key;
        None: the key is required.
    """

    key: str
    dtype: str
    default: str | int | None = None


# Every field of a record, in the order encode_block's arguments name them;
# the writer (pipeline.records.encode_block) and the parse spec
# (pipeline.examples.feature_spec) are both derived from this tuple.
RECORD_FIELDS: tuple[RecordField, ...] = (
    RecordField(BLOCK_KEY, "bytes"),
    RecordField(LABEL_KEY, "int64"),
    RecordField(CLIP_ID_KEY, "bytes"),
    RecordField(SPEAKER_ID_KEY, "bytes"),
    RecordField(BLOCK_INDEX_KEY, "int64"),
    RecordField(AGE_KEY, "bytes", default=""),
    RecordField(ACCENT_KEY, "bytes", default=""),
    RecordField(AUGMENTATION_KEY, "bytes", default=""),
)
# role -> key, as metadata.json's "keys" lists them (the roles are the keys' own names).
RECORD_KEYS: Mapping[str, str] = {field.key: field.key for field in RECORD_FIELDS}
# The per-block facts beside block and label that evaluation reads (clip, speaker, fairness views).
INFO_KEYS: tuple[str, ...] = tuple(f.key for f in RECORD_FIELDS if f.key not in (BLOCK_KEY, LABEL_KEY))

# --- labels ---
MALE = 0
FEMALE = 1
UNLABELLED = -1  # a clip whose gender field is blank (only ever predicted, never trained on)
GENDER_NAMES: tuple[str, str] = ("male", "female")  # indexed by label

# --- splits and files ---
TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS: tuple[str, str, str] = (TRAIN, VALIDATION, TEST)
SHARD_SUFFIX = ".tfrecord"
# TFRecord compression as tf.data names it ("" = none). Not GZIP: float
# spectrograms only shrink to 78% with it, and inflating caps the input
# pipeline at ~15k blocks/s on 2 cores against ~27k uncompressed (WORKSPACE.md).
SHARD_COMPRESSION = ""
METADATA_FILENAME = "metadata.json"
# A training run's data metadata.json, copied beside an export of it (model/pretrained carries one).
TRAINING_METADATA_FILENAME = "training_data_metadata.json"
REJECTED_PREFIX = "rejected"


def shard_name(split: str, index: int, count: int) -> str:
    """File name of one TFRecord shard, e.g. ``train-00003-of-00016.tfrecord``."""
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def shard_pattern(split: str) -> str:
    """Glob that matches every shard of ``split``."""
    return f"{split}-*-of-*{SHARD_SUFFIX}"


class FeatureKind(enum.StrEnum):
    """What a feature set computes from the STFT (stored in the metadata as the value)."""

    LOG_MEL = "log_mel"  # log of a mel-weighted STFT magnitude
    STFT_ABS_REAL = "stft_abs_real"  # the seed article's abs(real(stft))
    # inaSpeechSegmenter 0.6.8's gender-CNN input: log of equal-area
    # HTK-mel triangles over the power spectrum of pre-emphasised, Hann-windowed frames.
    INA_LOG_MEL = "ina_log_mel"
    # Both of the above per frame, side by side: LOG_MEL's bins, then INA_LOG_MEL's (``FeatureSet.parts``).
    LOG_MEL_INA = "log_mel_ina"


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    """Spectrogram parameters; the features are computed from these alone.

    Attributes:
      name: registry name, stored in the metadata.
      kind: a ``FeatureKind``: ``LOG_MEL`` (log of a mel-weighted STFT
        magnitude), ``STFT_ABS_REAL`` (the seed article's ``abs(real(stft))``)
        ``INA_LOG_MEL`` (inaSpeechSegmenter's log mel power spectrum) or
        ``LOG_MEL_INA`` (the two log mels of ``parts`` side by side on one
        frame grid); its string value is accepted and converted.
      sample_rate: Hz the waveform is resampled to before the STFT.
      frame_length: STFT window length in samples.
      frame_step: STFT hop in samples.
      fft_length: FFT size (>= frame_length).
      num_bins: feature bins per frame (mel bins, or fft_length // 2 + 1).
      block_frames: frames per block, the model's input length.
      mel_lower_hz: lowest mel filter edge (log-mel kinds only).
      mel_upper_hz: highest mel filter edge (log-mel kinds only).
      log_offset: added before the log so silence stays finite (log-mel kinds only).
      pre_emphasis: ``INA_LOG_MEL`` only: each frame's ``x[n] - a * x[n-1]``
        (its first sample ``(1 - a) * x[0]``), before the window.
      fft_float64: ``INA_LOG_MEL`` (and ``LOG_MEL_INA``'s ina part) only:
        window and FFT in float64, as numpy does them in ina (exact to
        ~1e-5), instead of float32 (what LiteRT's builtin ops can run; see
        benchmarks.ina_features for the difference).
    """

    name: str
    kind: FeatureKind
    sample_rate: int
    frame_length: int
    frame_step: int
    fft_length: int
    num_bins: int
    block_frames: int
    mel_lower_hz: float = 0.0
    mel_upper_hz: float = 0.0
    log_offset: float = 0.0
    pre_emphasis: float = 0.0
    fft_float64: bool = False

    def __post_init__(self):
        # Metadata and older callers give the kind as a string; ValueError for an unknown one.
        object.__setattr__(self, "kind", FeatureKind(self.kind))

    @property
    def is_log_mel(self) -> bool:
        """Whether the features are the log of HTK-mel-spaced bands (``LOG_MEL``, ``INA_LOG_MEL``)."""
        return self.kind in (FeatureKind.LOG_MEL, FeatureKind.INA_LOG_MEL)

    @property
    def parts(self) -> tuple[FeatureSet, ...]:
        """The feature sets whose frames this one concatenates along bins (itself for every kind but
        ``LOG_MEL_INA``, which is ``LOG_MEL`` then ``INA_MEL``, both cut into this set's blocks)."""
        if self.kind is not FeatureKind.LOG_MEL_INA:
            return (self,)
        return (dataclasses.replace(LOG_MEL, block_frames=self.block_frames),
                dataclasses.replace(INA_MEL, block_frames=self.block_frames, fft_float64=self.fft_float64))

    @property
    def normalized_bins(self) -> int:
        """How many leading bins the training statistics standardise (``metadata.Normalizer``).

        All of them, except inaSpeechSegmenter's bins: its CNN standardises
        each whole patch itself, and per-bin statistics before that would change
        what it sees (``INA_MEL``: none; ``LOG_MEL_INA``: the log_mel part's).
        """
        return sum(part.num_bins for part in self.parts if part.kind is not FeatureKind.INA_LOG_MEL)

    @property
    def block_shape(self) -> tuple[int, int]:
        """Shape of one stored block: (frames, bins)."""
        return (self.block_frames, self.num_bins)

    @property
    def block_nbytes(self) -> int:
        """Bytes of one stored block (BLOCK_DTYPE is float32)."""
        return 4 * self.block_frames * self.num_bins

    @property
    def block_samples(self) -> int:
        """Waveform samples one block advances by (block_frames hops)."""
        return self.block_frames * self.frame_step

    @property
    def min_clip_samples(self) -> int:
        """Fewest samples that yield one whole block."""
        return (self.block_frames - 1) * self.frame_step + self.frame_length

    @property
    def block_seconds(self) -> float:
        return self.block_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``metadata.json`` (plus ``block_shape`` and ``dtype``)."""
        d = dataclasses.asdict(self)
        d["kind"] = self.kind.value
        d["block_shape"] = list(self.block_shape)
        d["dtype"] = BLOCK_DTYPE
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSet:
        """The feature set ``to_dict`` wrote; keys that are not fields are ignored."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


# Defaults follow VGGish/YAMNet, the field's standard log-mel front end for
# audio classification: 25 ms windows, 10 ms hop, 64 mel bins over
# 125-7500 Hz, log(mel + 0.001), 0.96 s blocks. 16 kHz keeps everything up
# to 8 kHz, where the formants and fricatives that carry gender cues live;
# F0 (85-255 Hz) is resolved by 512-point FFTs (31 Hz bins) through its
# harmonics.
LOG_MEL = FeatureSet(
    name="log_mel",
    kind=FeatureKind.LOG_MEL,
    sample_rate=16000,
    frame_length=400,
    frame_step=160,
    fft_length=512,
    num_bins=64,
    block_frames=96,
    mel_lower_hz=125.0,
    mel_upper_hz=7500.0,
    log_offset=0.001,
)

# The seed article's input, exactly: 48 kHz (Common Voice's native rate),
# 1024-sample frames, 384-sample (8 ms) steps, abs(real(stft)) with 513 bins,
# 100-frame (800 ms) blocks.
STFT_SEED = FeatureSet(
    name="stft_seed",
    kind=FeatureKind.STFT_ABS_REAL,
    sample_rate=48000,
    frame_length=1024,
    frame_step=384,
    fft_length=1024,
    num_bins=513,
    block_frames=100,
)

# inaSpeechSegmenter 0.6.8's gender CNN's input (issue 21), checked against the wheel's own
# function by benchmarks.ina_features: 16 kHz, 25 ms frames every 10 ms (no padding: a partial last
# frame is dropped), pre-emphasis 0.97 inside each frame, a symmetric Hann window, 512-point FFT, the
# power spectrum, 24 equal-area HTK-mel triangles over 100-8000 Hz, natural log; 68-frame patches.
# ina's log has no offset, and neither has ours: a band's power is floored at LOG_FLOOR instead, so an
# all-zero frame (MP3 padding; -inf in ina's) is -87.3, and every other value is ina's.
INA_MEL = FeatureSet(
    name="ina_mel",
    kind=FeatureKind.INA_LOG_MEL,
    sample_rate=16000,
    frame_length=400,
    frame_step=160,
    fft_length=512,
    num_bins=24,
    block_frames=68,
    mel_lower_hz=100.0,
    mel_upper_hz=8000.0,
    pre_emphasis=0.97,
    fft_float64=True,
)

# Issue 21's fused model's input: per 10 ms frame, log_mel's 64 bins then ina_mel's 24 (float32 FFT, what
# LiteRT runs), in log_mel's 0.96 s blocks; the two front ends share the 400/160 frame grid, so the frames
# line up. Its parts' parameters are LOG_MEL's and INA_MEL's above (``FeatureSet.parts``).
LOG_MEL_INA = FeatureSet(
    name="log_mel_ina",
    kind=FeatureKind.LOG_MEL_INA,
    sample_rate=LOG_MEL.sample_rate,
    frame_length=LOG_MEL.frame_length,
    frame_step=LOG_MEL.frame_step,
    fft_length=LOG_MEL.fft_length,
    num_bins=LOG_MEL.num_bins + INA_MEL.num_bins,
    block_frames=LOG_MEL.block_frames,
    fft_float64=False,
)

FEATURE_SETS: dict[str, FeatureSet] = {fs.name: fs for fs in (LOG_MEL, STFT_SEED, INA_MEL, LOG_MEL_INA)}
# The smallest normal float32: log-mel kinds take the log of max(band + log_offset, LOG_FLOOR), so no
# value is ever -inf (log_mel's offset of 0.001 is always above it).
LOG_FLOOR = 1.1754944e-38
# The rate pipeline.waveform_augment works at (log_mel's): the Beam job's train copies need it.
AUGMENT_SAMPLE_RATE = LOG_MEL.sample_rate
DEFAULT_FEATURE_SET = LOG_MEL.name

# Silence rule (see pipeline.spectrogram.block_is_voiced): a block is silent
# when its waveform RMS is below SILENCE_FLOOR_DBFS, or more than
# SILENCE_RELATIVE_DB below the loudest block of the same clip. The rule is
# relative first: quiet recordings are speech (issue 9: a clip 30 dB quieter
# lost 62 of 258 held-out clips to a -55 dBFS floor; with -80 it loses none
# and the model's balanced accuracy is 0.972 against 0.983 at full level),
# while digital zero and dither (below -80 dBFS) stay silent.
SILENCE_FLOOR_DBFS = -80.0
SILENCE_RELATIVE_DB = 30.0
# Between speech, a pause quieter than this is "silence" (predict --segments) and not sound; the energy
# speech detector's floor (model.predict.vad), which must not hear room tone as speech.
PAUSE_FLOOR_DBFS = -55.0


def get_feature_set(name: str) -> FeatureSet:
    """Looks up a feature set by name.

    Raises:
      ValueError: for an unknown name, listing the known ones.
    """
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise ValueError(
            f"unknown feature set {name!r}; known: {sorted(FEATURE_SETS)}"
        ) from None
