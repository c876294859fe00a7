"""Audio augmentation for the recovery step: speed perturbation, gain and additive noise.

The recipe ASR training uses against overfitting a small set (Kaldi's 0.9/1.0/1.1 speed perturbation, random
gain, noise at a random SNR): each copy of a clip is a new sample for the distillation, and the teacher
labels it afresh, so no transcript is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import soxr

from lite_whisper.data.synthesis import add_noise

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Augmentation:
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)  # tempo and pitch together, as sox `speed`
    gain_db: tuple[float, float] = (-6.0, 6.0)
    snr_db: tuple[float, float] = (15.0, 40.0)  # white noise at a random SNR ...
    noise_probability: float = 0.5  # ... on this share of the copies

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        clip = np.asarray(clip, dtype=np.float32)
        speed = float(rng.choice(self.speeds))
        if speed != 1.0:  # read as if sampled `speed` times faster, back at 16 kHz: 1/speed as long
            clip = soxr.resample(clip, SAMPLE_RATE * speed, SAMPLE_RATE).astype(np.float32)
        clip = clip * np.float32(10 ** (rng.uniform(*self.gain_db) / 20))
        if rng.random() < self.noise_probability and np.any(clip):
            clip = add_noise(clip, float(rng.uniform(*self.snr_db)), rng)
        return np.clip(clip, -1.0, 1.0).astype(np.float32)


# For the calibration statistics: the recording level varies far more in real audio than in peak-normalized
# speech sets, and it moves every log-mel frame, the padding's floor included (Whisper's features are clamped at
# 8 below the window's maximum); background noise fills the pauses that synthesized speech leaves silent.
CALIBRATION_AUGMENTATION = Augmentation(speeds=(1.0,), gain_db=(-30.0, 0.0), snr_db=(10.0, 40.0), noise_probability=0.5)


def augmented_copies(clips: Sequence[np.ndarray], copies: int, augmentation: Augmentation | None,
                     seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """The clips as they are, then `copies` augmented copies of each (each copy in a seeded, shuffled order);
    also the index of the clip each one was made from."""
    out = [np.asarray(c, dtype=np.float32) for c in clips]
    sources = list(range(len(clips)))
    if augmentation is None or copies <= 0:
        return out, sources
    rng = np.random.default_rng(seed)
    for _ in range(copies):
        order = rng.permutation(len(clips)).tolist()
        out += [augmentation(clips[i], rng) for i in order]
        sources += order
    return out, sources
