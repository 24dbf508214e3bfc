"""Generated real-world-like recordings with known truth: who speaks when, and what is not speech.

A recording is a conversation: alternating male and female turns of 2-15 s
(each turn one speaker's clips, their leading and trailing silence trimmed,
concatenated), pauses of 0.2-1.5 s between turns, optionally music-like or
noise interludes between turns and background noise (white, pink, brown, or
babble: several other speakers mixed) at a given SNR. The truth lists every
stretch as ``(start_s, end_s, kind)`` with kind ``male``, ``female``,
``pause``, ``noise`` or ``music``; ``truth_frames`` gives the speech mask on
``model.predict.vad``'s 10 ms grid.

Speech comes from real corpora in the Common Voice layout (``../shared/data``:
Common Voice, LibriSpeech, Duke alphanumeric) when present, else from the
project's synthetic voices (``beam_jobs.sample_corpus``). ``expressive/`` is
for evaluation only and is never a default source here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from beam_jobs import sample_corpus
from benchmarks import common
from model.predict import vad
from pipeline import audio, features
from pipeline import common_voice as cv

SAMPLE_RATE = vad.SAMPLE_RATE
KINDS = ("male", "female", "pause", "noise", "music")
SPEECH_KINDS = ("male", "female")
NOISES = ("white", "pink", "brown", "babble")
INTERLUDES = ("music", "noise")
DATA_ROOT = os.path.join(common.REPO, "..", "shared", "data")
# The corpora a recording's speech may come from (expressive/ is evaluation-only: not listed).
DEFAULT_DATA_DIRS = tuple(os.path.join(DATA_ROOT, name)
                          for name in ("commonvoice-6.1-sample", "librispeech-sample", "duke-alphanumeric"))

# Each turn, interlude and the room tone get their own level, as different
# talkers and sources on one recording would: RMS in dBFS (over active samples).
SPEECH_DBFS = (-32.0, -20.0)
INTERLUDE_DBFS = (-34.0, -22.0)
ROOM_TONE_DBFS = -72.0  # a quiet room under everything: pauses are never digital zeros
BABBLE_TALKERS = 6

Speaker = Sequence[np.ndarray]  # one speaker's clips: mono float32 at SAMPLE_RATE, trimmed


class Segment(NamedTuple):
    """One stretch of a recording's truth."""

    start_s: float
    end_s: float
    kind: str  # one of KINDS


@dataclasses.dataclass
class Recording:
    """A generated recording and what is in it.

    Attributes:
      waveform: mono float32 at ``sample_rate``.
      truth: consecutive segments covering the whole waveform, in order.
      sample_rate: Hz.
      description: the condition (e.g. ``pink noise at 10 dB SNR``).
    """

    waveform: np.ndarray
    truth: list[Segment]
    sample_rate: int = SAMPLE_RATE
    description: str = "clean"

    @property
    def seconds(self) -> float:
        return len(self.waveform) / self.sample_rate


def truth_frames(recording: Recording) -> np.ndarray:
    """The speech mask on ``model.predict.vad``'s grid: True where a 10 ms frame's centre is inside a male or female turn.

    A turn counts as speech from its first to its last sample, the short
    pauses between its words included (what a turn-level segmenter should
    return as one region).
    """
    n = vad.frame_count(len(recording.waveform), recording.sample_rate)
    centres = (np.arange(n) + 0.5) * vad.FRAME_S
    mask = np.zeros(n, dtype=bool)
    for seg in recording.truth:
        if seg.kind in SPEECH_KINDS:
            mask |= (centres >= seg.start_s) & (centres < seg.end_s)
    return mask


def trim_silence(clip: np.ndarray, sample_rate: int = SAMPLE_RATE, relative_db: float = 40.0,
                 pad_s: float = 0.05) -> np.ndarray:
    """A clip without its leading and trailing silence.

    Cuts before the first and after the last 10 ms frame within ``relative_db``
    of the clip's loudest frame, keeping ``pad_s`` around them (the soft start
    of a word). An energy rule, like the ``energy`` detector, but 10 dB more
    lenient, so that trimming does not cut what that detector would find.
    """
    frames = vad.speech_frames(clip, "energy", sample_rate, floor_dbfs=-90.0, relative_db=relative_db)
    voiced = np.flatnonzero(frames)
    if not len(voiced):
        return clip[:0]
    hop, pad = round(sample_rate * vad.FRAME_S), round(pad_s * sample_rate)
    return clip[max(0, voiced[0] * hop - pad): min(len(clip), (voiced[-1] + 1) * hop + pad)]


def synthetic_sources(rng: np.random.Generator, speakers_per_gender: int, clips_per_speaker: int = 3,
                      clip_s: tuple[float, float] = (2.0, 6.0),
                      sample_rate: int = SAMPLE_RATE) -> tuple[list[Speaker], list[Speaker]]:
    """Male and female speakers of the project's source-filter synthesizer, each with its own clips."""
    sources: dict[bool, list[Speaker]] = {True: [], False: []}
    for male in (True, False):
        for index in range(speakers_per_gender):
            speaker = sample_corpus.make_speaker(rng, male, index)
            clips = [sample_corpus.synthesize(speaker, float(rng.uniform(*clip_s)), rng, sample_rate)
                     for _ in range(clips_per_speaker)]
            sources[male].append([trim_silence(c, sample_rate) for c in clips])
    return sources[True], sources[False]


def real_sources(data_dirs: Sequence[str], rng: np.random.Generator, speakers_per_gender: int,
                 clips_per_speaker: int = 4, min_speaker_s: float = 2.0,
                 sample_rate: int = SAMPLE_RATE) -> tuple[list[Speaker], list[Speaker]]:
    """Male and female speakers drawn at random from Common Voice-layout corpora.

    Args:
      data_dirs: release roots (``<locale>/validated.tsv`` + ``clips/``); absent ones are skipped.
      rng: picks speakers and their clips.
      speakers_per_gender: speakers wanted per gender (fewer if the corpora hold fewer).
      clips_per_speaker: at most this many clips per speaker.
      min_speaker_s: a speaker with less trimmed audio is skipped (a turn lasts >= 2 s).
      sample_rate: the rate clips are decoded to.

    Returns:
      (male speakers, female speakers), each a list of clip lists; a clip that
      does not decode is skipped.
    """
    paths: dict[tuple[int, str], list[str]] = {}
    for data_dir in data_dirs:
        if not common.corpus_present(data_dir):
            continue
        for locale in sorted(os.listdir(data_dir)):
            locale_dir = os.path.join(data_dir, locale)
            if not os.path.exists(os.path.join(locale_dir, cv.VALIDATED_TSV)):
                continue
            with open(os.path.join(locale_dir, cv.VALIDATED_TSV), encoding="utf-8", newline="") as f:
                for clip in cv.parse_validated_tsv(f, locale_dir):
                    if isinstance(clip, cv.Clip) and os.path.exists(clip.audio_path):
                        paths.setdefault((clip.label, f"{data_dir}:{clip.speaker_id}"), []).append(clip.audio_path)
    sources: dict[int, list[Speaker]] = {features.MALE: [], features.FEMALE: []}
    for label, speakers in sources.items():
        keys = sorted(k for k in paths if k[0] == label)
        for index in rng.permutation(len(keys)):
            if len(speakers) == speakers_per_gender:
                break
            files = paths[keys[index]]
            clips = []
            for i in rng.permutation(len(files))[:clips_per_speaker]:
                try:
                    clips.append(trim_silence(audio.read_audio_file(files[i], sample_rate), sample_rate))
                except audio.AudioError:
                    continue
            if sum(len(c) for c in clips) >= min_speaker_s * sample_rate:
                speakers.append(clips)
    return sources[features.MALE], sources[features.FEMALE]


def load_sources(data_dirs: Sequence[str], rng: np.random.Generator, speakers_per_gender: int,
                 clips_per_speaker: int = 4) -> tuple[list[Speaker], list[Speaker], str]:
    """Real speakers when any corpus of ``data_dirs`` is present, else synthetic ones.

    Returns:
      (male speakers, female speakers, where they came from).
    """
    present = [d for d in data_dirs if common.corpus_present(d)]
    if present:
        male, female = real_sources(present, rng, speakers_per_gender, clips_per_speaker)
        if male and female:
            names = ", ".join(os.path.basename(os.path.normpath(d)) for d in present)
            return male, female, f"real speech from {names}"
    male, female = synthetic_sources(rng, speakers_per_gender, min(clips_per_speaker, 3))
    return male, female, "synthetic voices (beam_jobs.sample_corpus; ../shared/data absent)"


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return (x / (np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)).astype(np.float32)


def _coloured(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0  # no infinite DC
    return _unit_rms(np.fft.irfft(spectrum / freqs ** (exponent / 2), n))


def make_noise(kind: str, n: int, rng: np.random.Generator, babble_sources: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``n`` samples of unit-RMS background noise.

    Args:
      kind: ``white``, ``pink``, ``brown`` or ``babble`` (``BABBLE_TALKERS``
        streams of ``babble_sources`` clips, each at equal level, summed).
      n: samples.
      rng: the noise's randomness.
      babble_sources: clips of speakers who are not in the conversation (babble only).

    Raises:
      ValueError: an unknown kind, or babble without sources.
    """
    if kind in ("white", "pink", "brown"):
        return _coloured(n, rng, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
    if kind != "babble":
        raise ValueError(f"unknown noise {kind!r}; choose one of {', '.join(NOISES)}")
    if not babble_sources:
        raise ValueError("babble noise needs babble_sources (clips of other speakers)")
    mix = np.zeros(n, dtype=np.float32)
    for _ in range(BABBLE_TALKERS):
        stream = []
        while sum(len(s) for s in stream) < n:  # each talker speaks without pauses, clips in random order
            stream.append(_unit_rms(babble_sources[rng.integers(len(babble_sources))]))
        start = int(rng.integers(max(1, len(stream[0]))))  # talkers start at different points
        mix += np.concatenate(stream + [stream[0]])[start: start + n]
    return _unit_rms(mix)


def _note(freq: float, n: int, sample_rate: int, harmonics: int, decay_s: float | None) -> np.ndarray:
    t = np.arange(n) / sample_rate
    k = np.arange(1, harmonics + 1)[:, None]
    tone = (np.sin(2 * np.pi * freq * k * t) / k ** 1.5 * (freq * k < sample_rate / 2 - 500)).sum(axis=0)
    envelope = np.minimum(1.0, t / 0.01)  # 10 ms attack: no click
    return tone * (envelope * np.exp(-t / decay_s) if decay_s else envelope)


def make_music(seconds: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A music-like interlude synthesized in code, unit RMS.

    A random choice of a melody of harmonic tones, a chord progression
    (plucked or sustained), and a drum pattern (kick, snare, hi-hat) at
    80-140 beats per minute.
    """
    n = int(seconds * sample_rate)
    beat = int(sample_rate * 60 / rng.uniform(80, 140))
    root = 110.0 * 2 ** (rng.integers(12) / 12)
    scale = root * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11]) / 12)
    arrangements = [("melody",), ("chords",), ("drums",), ("melody", "chords"), ("chords", "drums"),
                    ("melody", "chords", "drums")]
    parts = arrangements[rng.integers(len(arrangements))]
    out = np.zeros(n)
    if "chords" in parts:
        plucked = rng.uniform() < 0.5
        for start in range(0, n, 4 * beat):  # one chord per bar
            degree = int(rng.integers(7))
            length = min(4 * beat, n - start)
            for step in (0, 2, 4):  # a triad of the scale
                freq = scale[(degree + step) % 7] * (2 if degree + step >= 7 else 1)
                out[start: start + length] += _note(freq, length, sample_rate, 6, 0.4 if plucked else None)
    if "melody" in parts:
        for start in range(0, n, beat // 2):  # eighth notes, some rests
            if rng.uniform() < 0.2:
                continue
            length = min(beat // 2, n - start)
            out[start: start + length] += 1.5 * _note(2 * scale[rng.integers(7)], length, sample_rate, 8, 0.15)
    if "drums" in parts:
        t = np.arange(beat) / sample_rate
        kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t / 0.03)) * t) * np.exp(-t / 0.12)
        snare = rng.standard_normal(beat) * np.exp(-t / 0.08)
        hat = np.diff(rng.standard_normal(beat // 2 + 1)) * np.exp(-t[: beat // 2] / 0.02)  # differenced: bright
        for i, start in enumerate(range(0, n, beat)):
            length = min(beat, n - start)
            out[start: start + length] += 3.0 * (kick if i % 2 == 0 else 0.6 * snare)[:length]
            for half in (0, beat // 2):
                if start + half < n:
                    piece = hat[: n - start - half]
                    out[start + half: start + half + len(piece)] += 0.5 * piece
    return _unit_rms(out)


def _turn(rng: np.random.Generator, clips: Speaker, cursor: list[int], turn_s: tuple[float, float],
          sample_rate: int) -> np.ndarray:
    """One speaker's turn: their next clips (in rotation) until a length drawn from ``turn_s``."""
    target, longest = rng.uniform(*turn_s) * sample_rate, turn_s[1] * sample_rate
    parts: list[np.ndarray] = []
    for _ in range(len(clips)):
        clip = clips[cursor[0] % len(clips)]
        length = sum(len(p) for p in parts)
        if parts and (length >= target or length + len(clip) > longest):
            break
        parts.append(_unit_rms(clip))  # one speaker's clips were recorded at different gains: one level per turn
        cursor[0] += 1
    return np.concatenate(parts)[: int(longest)]


def make_recording(rng: np.random.Generator, male_sources: Sequence[Speaker], female_sources: Sequence[Speaker],
                   *, seconds: float = 60.0, turn_s: tuple[float, float] = (2.0, 15.0),
                   pause_s: tuple[float, float] = (0.2, 1.5), interludes: Sequence[str] = (),
                   interlude_prob: float = 0.5, interlude_s: tuple[float, float] = (2.0, 6.0),
                   noise: str | None = None, snr_db: float = 20.0, babble_sources: Sequence[np.ndarray] = (),
                   rt60_s: float | None = None, distance_db: float = 0.0,
                   sample_rate: int = SAMPLE_RATE) -> Recording:
    """A conversation of alternating male and female turns, with known truth.

    Args:
      rng: every random choice (speakers, lengths, levels, noise).
      male_sources: speakers (each a list of trimmed clips) for the male turns.
      female_sources: the same for the female turns.
      seconds: the recording's length (the last stretch is cut there).
      turn_s: a turn's length range; a turn is whole clips of one speaker
        (the first clip is cut at ``turn_s[1]`` if longer).
      pause_s: the range of the pause before and after each turn.
      interludes: kinds (``music``, ``noise``) that may stand between two turns.
      interlude_prob: the chance of an interlude after a turn (when ``interludes``).
      interlude_s: an interlude's length range.
      noise: background noise under the whole recording (``NOISES``), or None.
      snr_db: speech power (over the turns) over noise power, dB.
      babble_sources: clips of other speakers, for ``noise="babble"``.
      rt60_s: a far-field talker: the recording convolved with a generated
        room response of this reverberation time (``reverberate``), before
        the noise; None: dry.
      distance_db: the far-field talker's level change (negative: quieter), dB.
      sample_rate: Hz of the sources and the recording.

    Returns:
      The recording; its truth covers it from 0 to ``seconds``.
    """
    # Long for its docstring: the generator's steps share the cursor and the truth list, so they stay in one body.
    if not male_sources or not female_sources:
        raise ValueError("make_recording needs at least one male and one female speaker")
    unknown = set(interludes) - set(INTERLUDES)
    if unknown:
        raise ValueError(f"unknown interlude(s) {sorted(unknown)}; choose from {INTERLUDES}")
    total = int(seconds * sample_rate)
    pieces: list[np.ndarray] = []
    truth: list[Segment] = []
    position = 0
    speakers = {"male": list(male_sources), "female": list(female_sources)}
    order = {kind: list(rng.permutation(len(group))) for kind, group in speakers.items()}
    cursors = {(kind, i): [0] for kind, group in speakers.items() for i in range(len(group))}
    turns = 0
    kind = "male" if rng.uniform() < 0.5 else "female"

    def add(piece: np.ndarray, what: str) -> None:
        nonlocal position
        pieces.append(piece.astype(np.float32))
        truth.append(Segment(position / sample_rate, (position + len(piece)) / sample_rate, what))
        position += len(piece)

    def pause() -> None:
        add(np.zeros(int(rng.uniform(*pause_s) * sample_rate)), "pause")

    pause()
    while position < total:
        index = order[kind][turns // 2 % len(order[kind])]  # the next speaker of this gender, in rotation
        speech = _turn(rng, speakers[kind][index], cursors[(kind, index)], turn_s, sample_rate)
        add(_unit_rms(speech) * 10 ** (rng.uniform(*SPEECH_DBFS) / 20), kind)
        pause()
        if interludes and rng.uniform() < interlude_prob:
            what = str(rng.choice(list(interludes)))
            length = int(rng.uniform(*interlude_s) * sample_rate)
            piece = make_music(length / sample_rate, rng, sample_rate) if what == "music" else \
                make_noise(str(rng.choice(["white", "pink", "brown"])), length, rng)
            add(piece * 10 ** (rng.uniform(*INTERLUDE_DBFS) / 20), what)
            pause()
        kind = "female" if kind == "male" else "male"
        turns += 1
    waveform = np.concatenate(pieces)[:total]
    truth = [Segment(s.start_s, min(s.end_s, total / sample_rate), s.kind) for s in truth if s.start_s * sample_rate < total]
    waveform = waveform + make_noise("white", total, rng) * np.float32(10 ** (ROOM_TONE_DBFS / 20))
    description = "clean" if not interludes else f"with {' and '.join(interludes)} interludes"
    if rt60_s is not None:
        waveform = reverberate(waveform, rt60_s, rng, sample_rate) * np.float32(10 ** (distance_db / 20))
        description += f", far-field (RT60 {rt60_s:g} s, {distance_db:+g} dB)"
    recording = Recording(waveform.astype(np.float32), truth, sample_rate, description)
    if noise is not None:
        recording = add_noise(recording, noise, snr_db, rng, babble_sources)
    return recording


def room_response(rt60_s: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A generated room impulse response: the direct sound, then a diffuse tail decaying 60 dB in ``rt60_s``.

    The tail is Gaussian noise under an exponential envelope (the standard
    statistical model of late reverberation), starting 5 ms after the direct
    sound, with a direct-to-reverberant energy ratio of 0 dB: a talker a few
    metres away in a meeting room. Unit energy.
    """
    n = int(1.2 * rt60_s * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # 60 dB = ln(1000) in amplitude over rt60_s
    tail[: int(0.005 * sample_rate)] = 0.0
    tail /= np.sqrt(np.sum(np.square(tail)))
    response = tail
    response[0] += 1.0
    return (response / np.sqrt(np.sum(np.square(response)))).astype(np.float32)


def reverberate(waveform: np.ndarray, rt60_s: float, rng: np.random.Generator,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``waveform`` heard through ``room_response`` (FFT convolution), cut to its own length."""
    response = room_response(rt60_s, rng, sample_rate)
    size = 1 << int(np.ceil(np.log2(len(waveform) + len(response))))
    wet = np.fft.irfft(np.fft.rfft(waveform, size) * np.fft.rfft(response, size), size)[: len(waveform)]
    return wet.astype(np.float32)


def add_noise(recording: Recording, kind: str, snr_db: float, rng: np.random.Generator,
              babble_sources: Sequence[np.ndarray] = ()) -> Recording:
    """The same recording (same truth) with background noise at ``snr_db`` under all of it.

    SNR is the speech's power over the turns' samples (pauses excluded) over
    the noise's power: a 10 dB recording has pauses at the noise's level.
    """
    speech = np.zeros(len(recording.waveform), dtype=bool)
    for seg in recording.truth:
        if seg.kind in SPEECH_KINDS:
            speech[round(seg.start_s * recording.sample_rate): round(seg.end_s * recording.sample_rate)] = True
    power = float(np.mean(np.square(recording.waveform[speech], dtype=np.float64))) if speech.any() else 1e-4
    noise = make_noise(kind, len(recording.waveform), rng, babble_sources)
    waveform = recording.waveform + noise * np.float32(np.sqrt(power / 10 ** (snr_db / 10)))
    peak = float(np.abs(waveform).max(initial=0.0))
    if peak > 1.0:  # louder noise than the format holds: scale the whole mix, as a recorder's gain would
        waveform = waveform / peak
    return dataclasses.replace(recording, waveform=waveform.astype(np.float32),
                               description=f"{recording.description}, {kind} noise at {snr_db:g} dB SNR")
