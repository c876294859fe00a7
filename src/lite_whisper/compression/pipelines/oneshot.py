"""One-shot (LiteASR): every projection calibrated on the original model; its factors are the top principal
components of its output (factors.py, unpaired statistics)."""

from __future__ import annotations

import torch

from lite_whisper.compression.pipelines.base import Pipeline


class OneShotPipeline(Pipeline):
    name = "oneshot"

    def preprocess(self, h_o: torch.Tensor) -> None:
        return None  # only the original path: calibrate_layer gathers unpaired statistics
