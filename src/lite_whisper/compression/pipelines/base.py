"""The interface of a compression pipeline and the layer loop that the layer-wise ones share.

`Pipeline.run(job)` turns a conversion job (the original model, the calibration windows and clips, the options)
into a LiteWhisper and a CompressionResult. The layer-wise pipelines choose ranks (allocation.py), compress the
encoder in one pass and then, when asked, recover (recovery.py); the iterative one repeats that in rounds.

As GPTQModel's `ModuleLooper` drives its processors, `Pipeline.compress` walks the encoder layer by layer:
`preprocess` gives the compressed path's first inputs, `calibrate_layer` moves both paths through the stages of
a layer (statistics.LAYER_STAGES) and calls `process` for each stage's statistics (choose ranks, fit factors,
put them into the compressed layer), and `finalize` records the original encoder's outputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from tqdm.auto import tqdm

from lite_whisper.compression import distributed
from lite_whisper.compression.allocation import make_chooser
from lite_whisper.compression.factors import Spectrum, spectrum
from lite_whisper.compression.lite_model import build_lite_whisper
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.compression.reconstruction import Windows, reconstruct
from lite_whisper.compression.recovery import recover_from_clips
from lite_whisper.compression.statistics import Covariance, calibrate_layer, encoder_inputs
from lite_whisper.compression.types import Factors, Key, Rank
from lite_whisper.modeling.modeling_lite_whisper import LowRankLinear, get_projection, set_projection

# Chooses the ranks of projections about to be fitted, from their fresh spectra (allocation.py).
Chooser = Callable[[Mapping[Key, Spectrum]], dict[Key, Rank]]


@dataclass
class CompressionResult:
    factors: dict[Key, Factors] = field(default_factory=dict)
    ranks: dict[Key, Rank] = field(default_factory=dict)
    energy: dict[Key, float] = field(default_factory=dict)
    gains: dict[Key, float] = field(default_factory=dict)
    targets: torch.Tensor | None = None  # the original encoder's outputs on the calibration windows
    reconstruction: dict = field(default_factory=dict)
    recovery: dict = field(default_factory=dict)
    windows: int = 0  # calibration windows this process gathered statistics on
    rounds: list = field(default_factory=list)  # iterative pipeline: one record per round


@dataclass
class Job:
    """What a pipeline compresses: the original model, its calibration windows (statistics), the clips they
    come from (recovery's training clips) and the held-out clips (early stopping), and the options."""

    model: object  # WhisperForConditionalGeneration, the original (teacher)
    feature_extractor: object
    features: torch.Tensor  # (windows, mels, frames): every window, all processes alike
    train_clips: list
    heldout_clips: list
    options: ConversionOptions


class Pipeline:
    """A way of compressing: the layer loop, with the compressed path tracked or not (`preprocess`)."""

    name: str = ""

    def run(self, job: Job):
        """(LiteWhisper, CompressionResult): ranks chosen on the original, one pass, then recovery if asked."""
        gains: dict[Key, float] = {}
        chooser = make_chooser(job.model, job.features, job.options, gains)
        shard = distributed.shard(job.features, job.options.batch_size)  # this process's windows
        result = self.compress(job.model.get_encoder(), shard, chooser, job.options.batch_size)
        result.gains, result.windows = gains, shard.shape[0]
        lite = build_lite_whisper(job.model, {k: tuple(t.float() for t in v) for k, v in result.factors.items()})
        result.reconstruction = reconstruct_from_clips(job.model, lite, job)
        if job.options.recovery is not None:
            result.recovery = recover_from_clips(job.model, lite, job.feature_extractor, job.train_clips,
                                                 job.heldout_clips, job.options)
        return lite, result

    def compress(self, encoder, features: torch.Tensor, chooser: Chooser, batch_size: int) -> CompressionResult:
        """Calibrate and factorize every encoder layer in order; return factors, ranks and energy kept."""
        result = CompressionResult()
        h_o = encoder_inputs(encoder, features, batch_size)
        h_c = self.preprocess(h_o)
        dtype = next(encoder.parameters()).dtype
        for idx, layer in enumerate(tqdm(encoder.layers, desc="compressing layers", unit="layer")):
            compressed = copy.deepcopy(layer)

            def process(names, cov, idx=idx, layer=layer, compressed=compressed):
                self.process(result, chooser, idx, layer, compressed, names, cov, dtype)

            h_o, h_c = calibrate_layer(layer, compressed, h_o, h_c, process, batch_size)
        return self.finalize(encoder, h_o, result)

    def preprocess(self, h_o: torch.Tensor) -> torch.Tensor | None:
        """The compressed path's inputs to the first layer, or None when only the original path is used."""
        raise NotImplementedError

    def process(self, result: CompressionResult, chooser: Chooser, idx: int, layer, compressed, names,
                cov: Covariance, dtype: torch.dtype) -> None:
        """One stage's statistics -> ranks -> factors, put into the compressed copy of the layer."""
        cov.all_reduce()  # sums over every process's windows: all fit the same factors
        specs = {(idx, n): spectrum(get_projection(layer, n), cov) for n in names}
        for key, rank in chooser(specs).items():
            spec = specs[key]
            result.ranks[key], result.energy[key] = rank, spec.energy_kept(rank)
            if rank is None:
                continue
            with torch.inference_mode(False):  # kept (normal tensors) in the model's dtype: float64 is
                factors = tuple(t.to(dtype) for t in spec.factors(rank))  # GBs for large-v3
            result.factors[key] = factors
            set_projection(compressed, key[1], low_rank_linear(get_projection(layer, key[1]), factors, dtype))

    def finalize(self, encoder, h_o: torch.Tensor, result: CompressionResult) -> CompressionResult:
        with torch.inference_mode():
            result.targets = encoder.layer_norm(h_o)
        return result


def reconstruct_from_clips(original, lite, job: Job) -> dict:
    """Block-wise reconstruction of `lite`'s encoder on the job's training clips, the best epoch of each layer
    chosen on its held-out clips (reconstruction.py); {} when the options ask for none."""
    options = job.options.reconstruction
    if options is None:
        return {}
    windows = [Windows(clips, job.feature_extractor, options.pack_seconds, options.padding_weight)
               for clips in (job.train_clips, job.heldout_clips)]
    return reconstruct(original.get_encoder(), lite.get_encoder(), *windows, options)


def low_rank_linear(dense, factors: Factors, dtype: torch.dtype) -> LowRankLinear:
    """A LowRankLinear in place of `dense`, holding `factors` (weight1, weight2, bias)."""
    low = LowRankLinear(dense.in_features, dense.out_features, factors[0].shape[1], device=dense.weight.device,
                        dtype=dtype)
    with torch.no_grad():
        for param, value in zip((low.weight1, low.weight2, low.bias), factors):
            param.copy_(value)
    return low
