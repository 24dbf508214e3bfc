"""Batch inference over a Common Voice release: predicted genders for unlabelled clips.

``ClassifyClips`` runs the LiteRT model in a DoFn that loads it once per
worker in ``setup()`` (the RunInference pattern, without TensorFlow on the
workers); ``AggregateSpeakers`` pools each speaker's clips; ``FlagMislabels``
lists labelled clips and speakers whose label disagrees with a confident
prediction. Bad clips become rejections with reasons, never failures.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import progress
from beam_jobs.decode import clip_source
from beam_jobs.rejections import NAMESPACE, REJECTED, reject
from model.predict import export_format, pooling
from pipeline import audio, features
from pipeline import common_voice as cv

CLIPS_FILE = "clips"
SPEAKERS_FILE = "speakers"
MISLABELS_FILE = "mislabels"
CLIPS_HEADER = "client_id\tpath\tlocale\tlabel\tp_female\tpredicted\tduration_s"
SPEAKERS_HEADER = "client_id\tclips\tlabel\tp_female\tpredicted\tconfidence\tagreement"
MISLABELS_HEADER = "level\tclient_id\tpath\tlabel\tpredicted\tp_female\tconfidence"


def label_name(label: int) -> str:
    """'male', 'female' or '' (unlabelled)."""
    return features.GENDER_NAMES[label] if label in (features.MALE, features.FEMALE) else ""


class _Scored:
    """The decision and its confidence, from a ``p_female`` attribute."""

    p_female: float

    @property
    def predicted(self) -> str:
        return features.GENDER_NAMES[int(self.p_female >= 0.5)]

    @property
    def confidence(self) -> float:
        return max(self.p_female, 1.0 - self.p_female)


@dataclasses.dataclass(frozen=True)
class ClipScore(_Scored):
    """One classified clip."""

    clip: cv.Clip
    p_female: float
    duration_s: float


@dataclasses.dataclass(frozen=True)
class SpeakerScore(_Scored):
    """A speaker's clips pooled: the mean clip probability and how much the clips agree."""

    speaker_id: str
    clips: int
    label: str  # the speaker's label if any clip carries one, else ""
    p_female: float
    agreement: float  # fraction of the clips whose own prediction matches the speaker's


def localize_model_dir(model_dir: str | None) -> str | None:
    """Copies a remote (gs://) model directory's two files to local disk; local paths pass."""
    if not model_dir or "://" not in model_dir:
        return model_dir

    local = tempfile.mkdtemp(prefix="voicegender_model_")
    for name in (export_format.EXPORT_METADATA, export_format.LITERT_FILENAME):
        with FileSystems.open(cv.join(model_dir, name)) as src, open(os.path.join(local, name), "wb") as dst:
            dst.write(src.read())
    return local


class ClassifyClipFn(beam.DoFn):
    """Clip -> ClipScore, or a Rejection (missing, outside clips/, undecodable, too short, silent, ...).

    The waveform lives only inside this step; a ``ClipScore`` (ids and two
    numbers) is all that leaves it, so nothing heavy crosses a shuffle.
    """

    def __init__(self, model_dir: str | None, progress_dir: str | None = None):
        self._model_dir = model_dir
        self._progress_dir = progress_dir
        self._classifier = None
        self._progress = None
        self._scored = Metrics.counter(NAMESPACE, "clips_scored")

    def setup(self):
        from model.predict.classifier import Classifier

        # One interpreter per worker, one thread each: workers already use the cores.
        self._classifier = Classifier(localize_model_dir(self._model_dir), num_threads=1)
        self._progress = progress.ProgressFile(self._progress_dir)

    def finish_bundle(self):
        self._progress.flush()

    def process(self, clip: cv.Clip, total: int = 0) -> Iterable:
        self._progress.set(progress.CLIPS_TO_DECODE, total)
        try:
            # Streamed in windows: a clip of any length costs the same memory.
            with clip_source(clip) as source:
                chunks = audio.stream_audio(source, self._classifier.sample_rate, clip.audio_path)
                result = self._classifier.classify_chunks(chunks, clip.audio_path)
        except Exception as e:  # noqa: BLE001 (any failure of one clip is its rejection, never the job's)
            self._progress.add(progress.CLIPS_FAILED)
            yield reject(clip.clip_id, *audio.failure_reason(e))
            return
        if result.error is not None:
            self._progress.add(progress.CLIPS_FAILED)
            yield reject(clip.clip_id, result.reason, result.error.split(": ", 1)[-1])
            return
        self._scored.inc()
        self._progress.add(progress.CLIPS_DECODED)
        yield ClipScore(clip, result.p_female, result.duration_s)


class ClassifyClips(beam.PTransform):
    """Clips -> (ClipScores, Rejections)."""

    def __init__(self, model_dir: str | None, progress_dir: str | None = None):
        super().__init__()
        self._model_dir = model_dir
        self._progress_dir = progress_dir

    def expand(self, clips):
        total = (
            clips
            | "CountToScore" >> beam.combiners.Count.Globally()
            | "CountMetric" >> beam.Map(progress.count_to_decode)
        )
        outputs = (
            clips
            # Spread the clips over workers before the expensive step.
            | "Spread" >> beam.Reshuffle()
            | "Classify" >> beam.ParDo(
                ClassifyClipFn(self._model_dir, self._progress_dir), total=beam.pvalue.AsSingleton(total)
            ).with_outputs(REJECTED, main="scores")
        )
        return outputs.scores, outputs[REJECTED]


def pool_speaker(speaker_id: str, scores: Iterable[ClipScore]) -> SpeakerScore:
    """Mean of the clip probabilities (``model.predict.pooling``, as ``predict --speaker_from`` pools);
    the label is the clips' (Common Voice labels are per speaker)."""
    scores = list(scores)
    pooled = pooling.pool(speaker_id, (s.p_female for s in scores))
    labels = sorted({label_name(s.clip.label) for s in scores} - {""})
    return SpeakerScore(speaker_id, pooled.clips, "/".join(labels), pooled.p_female, pooled.agreement)


class AggregateSpeakers(beam.PTransform):
    """ClipScores -> one SpeakerScore per client_id."""

    def expand(self, scores):
        return (
            scores
            | "BySpeaker" >> beam.Map(lambda s: (s.clip.speaker_id, s))
            | "Group" >> beam.GroupByKey()
            | "Pool" >> beam.MapTuple(pool_speaker)
        )


class FlagMislabels(beam.PTransform):
    """Labelled clips and speakers whose label disagrees with a prediction of at least ``confidence``."""

    def __init__(self, confidence: float):
        super().__init__()
        self._confidence = confidence

    def expand(self, pcolls):
        clip_scores, speaker_scores = pcolls
        threshold = self._confidence
        clips = clip_scores | "SuspectClips" >> beam.FlatMap(
            lambda s: [f"clip\t{s.clip.speaker_id}\t{s.clip.clip_id}\t{label_name(s.clip.label)}\t{s.predicted}\t"
                       f"{s.p_female:.4f}\t{s.confidence:.4f}"]
            if s.clip.label != features.UNLABELLED and label_name(s.clip.label) != s.predicted
            and s.confidence >= threshold else [])
        speakers = speaker_scores | "SuspectSpeakers" >> beam.FlatMap(
            lambda s: [f"speaker\t{s.speaker_id}\t\t{s.label}\t{s.predicted}\t{s.p_female:.4f}\t{s.confidence:.4f}"]
            if s.label in features.GENDER_NAMES and s.label != s.predicted and s.confidence >= threshold else [])
        return (clips, speakers) | "All" >> beam.Flatten()


def clip_line(s: ClipScore) -> str:
    path = s.clip.clip_id.split("/", 1)[-1]
    return (f"{s.clip.speaker_id}\t{path}\t{s.clip.locale}\t{label_name(s.clip.label)}\t{s.p_female:.4f}\t"
            f"{s.predicted}\t{s.duration_s:.2f}")


def speaker_line(s: SpeakerScore) -> str:
    return f"{s.speaker_id}\t{s.clips}\t{s.label}\t{s.p_female:.4f}\t{s.predicted}\t{s.confidence:.4f}\t{s.agreement:.3f}"


def write_tsv(pcoll, output_dir: str, name: str, header: str, step: str):
    return pcoll | step >> beam.io.WriteToText(cv.join(output_dir, name), file_name_suffix=".tsv", num_shards=1,
                                               header=header)
