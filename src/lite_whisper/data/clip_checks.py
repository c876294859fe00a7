"""Calibration audio checked clip by clip, as it is read: what statistics must never see, and long clips split.

A clip is bad when it
- did not decode (data/audio.py reports it: a text file renamed .wav, a truncated file),
- is empty (shorter than 10 ms),
- holds non-finite samples (NaN or inf: one such clip makes every SVD of the conversion fail),
- is silent: RMS below SILENCE_DBFS (-60 dBFS; digital silence is -inf). Speech read at any usable level sits
  far above it (the synthesized sets near -20 dBFS, quiet real recordings near -40).
Each bad clip stops the conversion with an error naming the file and the fix, or, when the user asked for it
(`--skip-bad-clips`), is skipped and counted; conversion.json lists them. Clips over 30 s are split into
consecutive 30 s pieces (a Whisper window each), so all of their speech is used instead of the first 30 s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from lite_whisper.data.audio import SAMPLE_RATE, AudioSample

SILENCE_DBFS = -60.0
MIN_SAMPLES = SAMPLE_RATE // 100  # 10 ms
WINDOW_SECONDS = 30


class BadClipError(ValueError):
    """A calibration clip that statistics must not see (the message names it and the fix)."""


def rms_dbfs(array: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(array, dtype=np.float64)))) if array.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def clip_problem(sample: AudioSample) -> str | None:
    """Why `sample` cannot calibrate (None when it can)."""
    if sample.problem:
        return sample.problem
    array = sample.array
    if array.size < MIN_SAMPLES:
        return f"is empty ({array.size} samples)"
    finite = np.isfinite(array)
    if not finite.all():
        return f"holds non-finite samples (NaN or inf: {int((~finite).sum())} of {array.size})"
    level = rms_dbfs(array)
    if level < SILENCE_DBFS:
        return f"is silent (RMS {level:.0f} dBFS, below {SILENCE_DBFS:.0f} dBFS)"
    return None


def split_long(array: np.ndarray, seconds: float = WINDOW_SECONDS) -> list[np.ndarray]:
    """`array` cut into consecutive pieces of at most `seconds` (one piece when it is short enough)."""
    size = int(seconds * SAMPLE_RATE)
    return [array[i:i + size] for i in range(0, len(array), size)] or [array]


def check_clips(samples: Sequence[AudioSample], *, skip_bad: bool = False,
                min_clips: int = 1) -> tuple[list[np.ndarray], list[str | None], dict]:
    """The usable clips' arrays (long ones split into 30 s pieces), the speaker of each (None where unknown) and a
    report for conversion.json.

    A bad clip raises BadClipError naming it and the fix unless `skip_bad`; fewer than `min_clips` usable clips
    are refused either way."""
    arrays, speakers, skipped = [], [], []
    rates: Counter = Counter()
    split = 0
    for sample in samples:
        problem = clip_problem(sample)
        name = sample.path or f"clip {sample.id!r}"
        if problem:
            if not skip_bad:
                raise BadClipError(f"calibration {name} {problem}: remove it from the calibration set (its row in "
                                   "the metadata), or pass --skip-bad-clips to skip such clips")
            skipped.append({"clip": name, "problem": problem})
            continue
        rates[str(sample.sampling_rate or SAMPLE_RATE)] += 1
        pieces = split_long(sample.array)
        split += len(pieces) > 1
        arrays += pieces
        speakers += [sample.speaker] * len(pieces)
    usable = len(samples) - len(skipped)
    if usable < min_clips:
        detail = f"; skipped: {', '.join(s['clip'] + ' ' + s['problem'] for s in skipped[:3])}" if skipped else ""
        raise BadClipError(f"too few usable calibration clips: {usable} of {len(samples)} read, at least {min_clips} "
                           f"needed for this conversion{detail}. Give more speech (--num-samples, another "
                           "--calibration set)")
    report = {"clips_read": len(samples), "clips_used": usable, "clips_skipped": len(skipped), "skipped": skipped,
              "source_sampling_rates": dict(sorted(rates.items())), "long_clips_split": split,
              "pieces": len(arrays)}
    return arrays, speakers, report


__all__ = ["BadClipError", "SILENCE_DBFS", "check_clips", "clip_problem", "rms_dbfs", "split_long"]
