"""Less clean speech: the rooms, channels and backgrounds of real recordings, which synthesized speech lacks.

Calibration on clean synthesized speech describes a narrow corner of what the encoder meets (studio-clean,
peak-normalized, silent pauses). Each degraded clip goes through a seeded random chain of what real audio has:
room reverberation (sox `reverb`), a band limit (sox `sinc`), a telephone channel (8 kHz, 300-3400 Hz, mu-law),
babble from other clips of the set, white noise, and a recording level. The chain is recorded per clip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from lite_whisper import atomic
from lite_whisper.data.synthesis import SAMPLE_RATE, MissingEngineError, add_noise, synthesize_dataset

MU = 255.0


def _sox(clip: np.ndarray, *effect: str) -> np.ndarray:
    """Run a sox effect chain on a 16 kHz float32 clip (raw samples through pipes, no files)."""
    if shutil.which("sox") is None:
        raise MissingEngineError("degraded speech needs sox: apt-get install -y sox")
    raw = ["-t", "raw", "-r", str(SAMPLE_RATE), "-e", "floating-point", "-b", "32", "-c", "1"]
    out = subprocess.run(["sox", *raw, "-", *raw, "-", *effect], input=clip.astype(np.float32).tobytes(),
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.float32).copy()


def reverb(clip: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    reverberance, room = int(rng.integers(20, 90)), int(rng.integers(30, 100))
    return _sox(clip, "reverb", str(reverberance), "50", str(room)), f"reverb {reverberance} room {room}"


def band_limit(clip: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    low, high = int(rng.integers(60, 300)), int(rng.integers(3500, 7500))
    return _sox(clip, "sinc", f"{low}-{high}"), f"band {low}-{high} Hz"


def telephone(clip: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """8 kHz, 300-3400 Hz, mu-law companding (G.711), back at 16 kHz."""
    narrow = soxr.resample(_sox(clip, "sinc", "300-3400"), SAMPLE_RATE, 8000)
    x = np.clip(narrow, -1, 1)
    coded = np.round(np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU) * 127) / 127  # 8-bit mu-law
    decoded = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(MU)) / MU
    return soxr.resample(decoded.astype(np.float32), 8000, SAMPLE_RATE).astype(np.float32), "telephone (mu-law)"


def babble(clip: np.ndarray, rng: np.random.Generator, others: Sequence[np.ndarray]) -> tuple[np.ndarray, str]:
    """Two to four other clips of the set, summed behind this one at 5-20 dB SNR."""
    if not others:
        return clip, ""
    voices = [others[i] for i in rng.choice(len(others), size=min(len(others), int(rng.integers(2, 5))),
                                            replace=False)]
    background = np.zeros_like(clip)
    for voice in voices:
        start = int(rng.integers(0, max(1, len(voice) - len(clip) + 1))) if len(voice) > len(clip) else 0
        part = voice[start:start + len(clip)]
        background[: len(part)] += part
    snr = float(rng.uniform(5, 20))
    power = float(np.mean(clip ** 2)) / max(float(np.mean(background ** 2)), 1e-12)
    return clip + background * np.sqrt(power / 10 ** (snr / 10)), f"babble {len(voices)} voices {snr:.0f} dB"


def degrade(clip: np.ndarray, rng: np.random.Generator, others: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, str]:
    """A seeded random chain of degradations (each applied with some probability); returns (clip, description)."""
    steps = []
    for probability, effect in ((0.5, reverb), (0.3, band_limit), (0.15, telephone)):
        if rng.random() < probability:
            clip, what = effect(clip, rng)
            steps.append(what)
    if rng.random() < 0.35:
        clip, what = babble(clip, rng, others)
        steps.append(what)
    if rng.random() < 0.4:
        snr = float(rng.uniform(10, 35))
        clip = add_noise(clip, snr, rng)
        steps.append(f"noise {snr:.0f} dB")
    gain = float(rng.uniform(-24, 0))
    clip = np.clip(clip * 10 ** (gain / 20), -1, 1).astype(np.float32)
    return clip, ", ".join([*steps, f"level {gain:.0f} dB"])


def degraded_copy(folder: str | Path, output: str | Path, seed: int = 0, progress: bool = True) -> Path:
    """Write a degraded copy of audiofolder `folder` at `output` (atomically): the same files and metadata, each
    clip through its own `degrade` chain (recorded as `degradation`), babble drawn from the set's other clips."""
    folder = Path(folder)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    clips = [sf.read(folder / row["file_name"], dtype="float32")[0] for row in rows]
    rng = np.random.default_rng(seed)
    with atomic.staged_folder(output) as staging:
        for i, row in enumerate(tqdm(rows, desc="degrading", unit="clip", disable=not progress)):
            audio, row["degradation"] = degrade(clips[i], rng, clips[:i] + clips[i + 1:])
            sf.write(staging / row["file_name"], audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        with open(staging / "metadata.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    return Path(output)


def synthesize_degraded(output: str | Path, num_utterances: int, *, seed: int = 0, **synthesis) -> Path:
    """A synthesized set (synthesis.synthesize_dataset) made less clean: see `degrade`."""
    with tempfile.TemporaryDirectory() as tmp:
        clean = synthesize_dataset(Path(tmp) / "clean", num_utterances, seed=seed, **synthesis)
        return degraded_copy(clean, output, seed=seed)
