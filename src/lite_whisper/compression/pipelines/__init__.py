"""Ways of compressing the encoder, one module each, behind one interface (`base.Pipeline`) and a registry.

- `oneshot`: LiteASR's calibration: every projection's statistics on the original model, PCA factors.
- `sequential`: layer by layer on the already-compressed model, reduced-rank regression towards the original.
- `iterative`: one-shot rounds towards the target on the current model, recovery from the original in between.

`get_pipeline(name)` returns the pipeline that `ConversionOptions.pipeline` names.
"""

from __future__ import annotations

from lite_whisper.compression.pipelines.base import CompressionResult, Job, Pipeline
from lite_whisper.compression.pipelines.iterative import IterativePipeline
from lite_whisper.compression.pipelines.oneshot import OneShotPipeline
from lite_whisper.compression.pipelines.sequential import SequentialPipeline

PIPELINES: dict[str, type[Pipeline]] = {p.name: p for p in (OneShotPipeline, SequentialPipeline, IterativePipeline)}


def get_pipeline(name: str) -> Pipeline:
    if name not in PIPELINES:
        raise ValueError(f"unknown compression pipeline {name!r}: choose one of {', '.join(PIPELINES)}")
    return PIPELINES[name]()


__all__ = ["PIPELINES", "CompressionResult", "IterativePipeline", "Job", "OneShotPipeline", "Pipeline", "SequentialPipeline", "get_pipeline"]
