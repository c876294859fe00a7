"""Encoder activations of many calibration windows, kept on disk: RAM holds one batch, however many windows.

A 30 s window of large-v3's encoder is 1500 x 1280 floats (7.7 MB), so a thousand windows of one layer's hidden
states are 7.7 GB: block-wise reconstruction keeps three such buffers (original inputs, compressed inputs, original
outputs). Each `ActivationStore` is a file memory-mapped as a torch tensor, read and written by slices; the
page cache keeps it in RAM when it fits, and the file goes with the store's temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from lite_whisper.compression.statistics import batches


class ActivationStore:
    """A (windows, frames, width) float32 tensor backed by a file in `directory` (a temporary one by default)."""

    def __init__(self, shape: tuple[int, ...], directory: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lite-whisper-activations-", dir=directory)
        path = Path(self._tmp.name) / "activations.f32"
        self._array = np.memmap(path, dtype=np.float32, mode="w+", shape=tuple(shape))
        self.tensor = torch.from_numpy(self._array)

    @property
    def shape(self) -> torch.Size:
        return self.tensor.shape

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        return self.tensor[index]

    def __setitem__(self, index, value: torch.Tensor) -> None:
        self.tensor[index] = value.detach().to("cpu", torch.float32)

    def close(self) -> None:
        """Drop the file (the store is unusable afterwards)."""
        self.tensor = None
        self._array = None
        self._tmp.cleanup()


def fill(store: ActivationStore, compute, count: int, batch_size: int) -> ActivationStore:
    """`store[sl] = compute(sl)` for every batch slice of `count` rows; returns the store."""
    for sl in batches(count, batch_size):
        store[sl] = compute(sl)
    return store
