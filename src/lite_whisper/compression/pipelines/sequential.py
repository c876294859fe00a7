"""Sequential: layer l is calibrated on the outputs of the already-compressed layers < l, stage by stage, and
fitted by reduced-rank regression towards the original model's outputs (factors.py, paired statistics)."""

from __future__ import annotations

import torch

from lite_whisper.compression.pipelines.base import Pipeline


class SequentialPipeline(Pipeline):
    name = "sequential"

    def preprocess(self, h_o: torch.Tensor) -> torch.Tensor:
        return h_o.clone()  # the compressed path starts from the same inputs
