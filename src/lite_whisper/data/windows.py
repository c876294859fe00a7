"""Whisper's 30 s log-mel windows from clips, optionally packed: short clips concatenated into fuller windows.

A 30 s window holding one 3 s utterance is 90% padding: statistics then mostly describe the padding, and every
window costs a full encoder pass. Calibration (`--pack-seconds`) and recovery (`--recovery-pack-seconds`) both
pack clips into windows here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def pack_groups(lengths: Sequence[int], limit: int, gap: int, keys: Sequence | None = None) -> list[list[int]]:
    """Indices of consecutive clips packed into windows of at most `limit` samples (`gap` samples between two
    clips); a clip longer than `limit` stays alone. With `keys`, only clips of equal key share a window."""
    groups: list[list[int]] = []
    length = 0
    for i, n in enumerate(lengths):
        fits = groups and length + gap + n <= limit
        if fits and (keys is None or keys[groups[-1][0]] == keys[i]):
            groups[-1].append(i)
            length += gap + n
        else:
            groups.append([i])
            length = n
    return groups


def pack_clips(arrays: Sequence[np.ndarray], seconds: float, gap: float = 0.5,
               sampling_rate: int = 16000) -> list[np.ndarray]:
    """Concatenate consecutive clips (with `gap` s of silence between them) into windows of at most `seconds`.

    A 30 s window holding one 3 s utterance is 90% padding: the statistics then mostly describe the padding,
    and every window costs a full encoder pass. Packed windows carry the same speech in a fraction of the
    passes, and still end in padding as long as `seconds` < 30. A clip longer than `seconds` stays alone.
    """
    arrays = [np.asarray(clip, dtype=np.float32) for clip in arrays]
    silence = np.zeros(int(gap * sampling_rate), dtype=np.float32)
    groups = pack_groups([len(a) for a in arrays], int(seconds * sampling_rate), len(silence))
    return [join_clips([arrays[i] for i in group], silence) for group in groups]


def join_clips(arrays: Sequence[np.ndarray], silence: np.ndarray) -> np.ndarray:
    parts = [arrays[0]]
    for clip in arrays[1:]:
        parts += [silence, clip]
    return np.concatenate(parts)


def log_mel_features(
    arrays: Sequence[np.ndarray], feature_extractor, sampling_rate: int = 16000
) -> torch.Tensor:
    """Whisper's own 30 s log-mel windows (padded or truncated) for each 16 kHz clip."""
    feats = feature_extractor(
        list(arrays), sampling_rate=sampling_rate, return_tensors="pt", padding="max_length"
    ).input_features
    return feats


def windows(arrays: list, feature_extractor, pack_seconds: float = 0.0) -> torch.Tensor:
    """Whisper's 30 s log-mel windows of the clips, packed first when `pack_seconds` > 0."""
    return log_mel_features(pack_clips(arrays, pack_seconds) if pack_seconds > 0 else arrays, feature_extractor)


# Whisper's encoder keeps one frame per 20 ms (two 10 ms hops, the second convolution has stride 2).
SAMPLES_PER_FRAME = 320
WINDOW_FRAMES = 1500


def speech_frames(samples: Sequence[int], frames: int = WINDOW_FRAMES) -> torch.Tensor:
    """(windows, frames) bool: which encoder frames of each 30 s window hold audio (the rest is padding)."""
    counts = torch.tensor([min(frames, -(-int(n) // SAMPLES_PER_FRAME)) for n in samples])
    return torch.arange(frames)[None, :] < counts[:, None]
