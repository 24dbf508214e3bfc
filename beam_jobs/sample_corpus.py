"""A small synthetic Common Voice corpus: male- and female-like voices, and bad rows.

The voices come from a source-filter synthesizer: a glottal harmonic source
with per-speaker pitch (F0), jitter and intonation, shaped by vowel formants
scaled by a per-speaker vocal-tract length, with consonant-like noise bursts
and pauses. Male speakers get lower F0 and lower formants, as in real speech.
It proves the plumbing, not accuracy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import soundfile

SAMPLE_RATE = 48000  # Common Voice's usual MP3 rate

# (F1, F2, F3) in Hz of a typical adult male vocal tract (Peterson & Barney).
VOWELS = {
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}
SENTENCES = [
    'He said "hello" and left.',
    "The quick brown fox jumps over the lazy dog.",
    "It's a 'quoted' word, isn't it?",
    "Numbers like 42 and 7 are read aloud.",
    "She sells sea shells by the sea shore.",
]

OLD_HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale", "segment"]
NEW_HEADER = [
    "client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes",
    "age", "gender", "accents", "variant", "locale", "segment",
]


@dataclasses.dataclass(frozen=True)
class Speaker:
    client_id: str
    male: bool
    f0_hz: float  # median pitch
    tract_scale: float  # formant multiplier: shorter tract, higher formants
    rate: float  # syllables per second
    age: str


def make_speaker(rng: np.random.Generator, male: bool, index: int) -> Speaker:
    client_id = hashlib.sha256(f"speaker-{male}-{index}-{rng.integers(1 << 30)}".encode()).hexdigest()
    return Speaker(
        client_id=client_id,
        male=male,
        f0_hz=float(rng.uniform(90, 145) if male else rng.uniform(175, 250)),
        tract_scale=float(rng.uniform(0.95, 1.05) if male else rng.uniform(1.12, 1.22)),
        rate=float(rng.uniform(3.0, 5.0)),
        age=str(rng.choice(["twenties", "thirties", "fourties", "fifties", ""])),
    )


def _envelope(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Formant resonance envelope at harmonic frequencies [..., harmonics]."""
    bandwidths = np.array([80.0, 100.0, 140.0])
    gains = np.array([1.0, 0.6, 0.3])
    env = np.zeros_like(freqs)
    for i in range(3):
        f_i = formants[:, i : i + 1]
        env += gains[i] / (1.0 + ((freqs - f_i) / (bandwidths[i] / 2)) ** 2)
    return env + 0.002


def synthesize(speaker: Speaker, seconds: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One utterance of ``speaker``: float32 mono at ``sr`` in [-1, 1]."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    # Prosody: declination, a few intonation bumps, vibrato-like jitter.
    bumps = sum(
        rng.uniform(-0.12, 0.18) * np.exp(-0.5 * ((t - rng.uniform(0, seconds)) / 0.25) ** 2) for _ in range(3)
    )
    f0 = speaker.f0_hz * (1.08 - 0.12 * t / seconds + bumps) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    # Syllables: a vowel each, with voiced/unvoiced gating and pauses.
    syllable = int(sr / speaker.rate)
    names = list(VOWELS)
    formants = np.zeros((n, 3))
    voiced = np.zeros(n)
    noise_gate = np.zeros(n)
    for start in range(0, n, syllable):
        end = min(n, start + syllable)
        formants[start:end] = np.array(VOWELS[names[rng.integers(len(names))]]) * speaker.tract_scale
        if rng.uniform() < 0.12:
            continue  # a pause
        consonant = int(0.25 * (end - start))
        noise_gate[start : start + consonant] = 1.0
        voiced[start + consonant : end] = 1.0
    # Smooth transitions (coarticulation) with a moving average over 20 ms.
    kernel = np.ones(int(0.02 * sr)) / int(0.02 * sr)
    formants = np.stack([np.convolve(formants[:, i], kernel, mode="same") for i in range(3)], axis=1)
    voiced = np.convolve(voiced, kernel, mode="same")
    # Harmonic source, computed in chunks to bound memory.
    phase = 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros(n)
    chunk = 4800
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        k = np.arange(1, int(7000 / speaker.f0_hz) + 1)
        harmonics = f0[s:e, None] * k[None, :]
        amp = _envelope(harmonics, formants[s:e]) / k[None, :] ** 0.6  # glottal spectral tilt
        amp *= harmonics < sr / 2 - 500
        out[s:e] = (amp * np.sin(phase[s:e, None] * k[None, :])).sum(axis=1)
    out *= voiced
    out += 0.15 * rng.standard_normal(n) * noise_gate * np.abs(out).max()
    out /= np.abs(out).max() + 1e-9
    out = 0.5 * out + 10 ** (-65 / 20) * rng.standard_normal(n)  # room noise floor
    return out.astype(np.float32)


def _write_mp3(path: str, audio: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    soundfile.write(path, audio, sr, format="MP3", subtype="MPEG_LAYER_III")


def _row(header: list[str], values: dict) -> list[str]:
    return [str(values.get(column, "")) for column in header]


class _LocaleWriter:
    """Writes one locale's clips and collects its TSV rows."""

    def __init__(self, output_dir: str, locale: str, header: list[str], sample_rate: int):
        self.locale_dir = os.path.join(output_dir, locale)
        self.clips_dir = os.path.join(self.locale_dir, "clips")
        os.makedirs(self.clips_dir, exist_ok=True)
        self.locale, self.header, self.sample_rate = locale, header, sample_rate
        self.rows: list[list[str]] = []

    def add(self, values: dict, audio: np.ndarray | None = None, raw: bytes | None = None) -> None:
        number = len(self.rows) + 1
        name = f"synthetic_{self.locale}_{number:05d}.mp3"
        values = {"path": name, "locale": self.locale, "sentence": SENTENCES[number % len(SENTENCES)],
                  "up_votes": 2, "down_votes": 0, "sentence_id": f"s{number}", **values}
        if audio is not None:
            _write_mp3(os.path.join(self.clips_dir, name), audio, self.sample_rate)
        elif raw is not None:
            with open(os.path.join(self.clips_dir, name), "wb") as f:
                f.write(raw)
        self.rows.append(_row(self.header, values))

    def write_tsv(self, newline: str) -> None:
        with open(os.path.join(self.locale_dir, "validated.tsv"), "w", encoding="utf-8", newline="") as f:
            for row in [self.header] + self.rows:
                f.write("\t".join(row) + newline)


def make_corpus(
    output_dir: str,
    speakers_per_gender: int = 6,
    clips_per_speaker: int = 4,
    seed: int = 0,
    seconds_range: tuple[float, float] = (2.5, 5.0),
    sample_rate: int = SAMPLE_RATE,
) -> dict[str, int]:
    """Writes a two-locale corpus: ``en`` (<= 16.1 schema, LF) and ``de`` (17+ schema, CRLF).

    Besides the good clips, each locale gets a blank-gender row, an
    ``other``/``do_not_wish_to_say`` row, a row whose clip is missing, a
    corrupt, an empty, a too-short and a silent clip, and a malformed row.

    Args:
      output_dir: the release root to write.
      speakers_per_gender: speakers of each gender per locale.
      clips_per_speaker: clips each speaker records.
      seed: random seed; the same seed writes the same corpus.
      seconds_range: clip durations are drawn from this range.
      sample_rate: of the MP3s (48 kHz like Common Voice; tests use 16 kHz).

    Returns:
      Counts of what was written: ``good`` clips per gender and ``bad`` rows.
    """
    rng = np.random.default_rng(seed)
    counts = {"male": 0, "female": 0, "bad": 0}
    for locale, header, newline in (("en", OLD_HEADER, "\n"), ("de", NEW_HEADER, "\r\n")):
        writer = _LocaleWriter(output_dir, locale, header, sample_rate)
        new_schema = header is NEW_HEADER
        male_value, female_value = ("male_masculine", "female_feminine") if new_schema else ("male", "female")
        accent_column = "accents" if new_schema else "accent"
        for male in (True, False):
            for i in range(speakers_per_gender):
                speaker = make_speaker(rng, male, i)
                for _ in range(clips_per_speaker):
                    audio = synthesize(speaker, float(rng.uniform(*seconds_range)), rng, sample_rate)
                    writer.add({"client_id": speaker.client_id, "gender": male_value if male else female_value,
                                "age": speaker.age, accent_column: "synthetic"}, audio)
                    counts["male" if male else "female"] += 1
        anyone = make_speaker(rng, True, 99)
        voice = synthesize(anyone, 2.0, rng, sample_rate)
        bad = [
            ({"gender": ""}, voice, None),
            ({"gender": "do_not_wish_to_say" if new_schema else "other"}, voice, None),
            ({"gender": male_value}, None, None),  # missing clip file
            ({"gender": female_value}, None, b"\x00\x01garbage, not audio" * 50),  # corrupt
            ({"gender": male_value}, None, b""),  # empty file
            ({"gender": female_value}, synthesize(anyone, 0.3, rng, sample_rate), None),  # too short
            ({"gender": male_value}, np.zeros(sample_rate * 2, np.float32), None),  # silent
        ]
        for values, audio, raw in bad:
            writer.add({"client_id": anyone.client_id, **values}, audio, raw)
            counts["bad"] += 1
        writer.rows.append(["malformed", "row"])  # too few fields
        counts["bad"] += 1
        writer.write_tsv(newline)
    return counts
