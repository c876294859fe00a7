"""Sensitivity: how much a projection's truncation hurts the encoder's final output, measured.

Energy alone is a poor guide (the variance a projection loses says nothing of how later layers amplify or
ignore it). For each projection we cut it to a probe rank in an otherwise original encoder, run the probe
windows from that layer to the end, and compare the final (layer-normed) encoder output with the original:
    gain = added final-output MSE / variance the cut removed at the projection (its spectrum's tail)
The allocator then predicts the loss of any rank as gain * tail(rank): a linear response, re-measured at
the allocated ranks when more than one round is asked for.
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from lite_whisper.compression.factors import Spectrum
from lite_whisper.compression.statistics import batches, run_layer
from lite_whisper.compression.types import Key, Rank
from lite_whisper.modeling.modeling_lite_whisper import get_projection, set_projection



def truncated_layer(layer: nn.Module, projection: str, spec: Spectrum, rank: int) -> nn.Module:
    """A copy of `layer` whose `projection` is cut to `rank` (as a dense weight: it only runs a probe)."""
    weight1, weight2, bias = spec.factors(rank)
    old = get_projection(layer, projection)
    new = nn.Linear(old.in_features, old.out_features, bias=True, dtype=old.weight.dtype, device=old.weight.device)
    with torch.no_grad():
        new.weight.copy_((weight1 @ weight2).T)
        new.bias.copy_(bias)
    probe = copy.copy(layer)  # shallow: shares every other submodule with the original
    probe._modules = dict(layer._modules)
    if projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
        probe.self_attn = copy.copy(layer.self_attn)
        probe.self_attn._modules = dict(layer.self_attn._modules)
    set_projection(probe, projection, new)
    return probe


@torch.inference_mode()
def measure_gains(
    encoder: nn.Module,
    layer_inputs: list[torch.Tensor],
    spectra: Mapping[Key, Spectrum],
    probe_ranks: Mapping[Key, Rank],
    batch_size: int = 4,
) -> dict[Key, float]:
    """Final-output MSE per unit of removed variance, for each projection cut alone to its probe rank.

    `layer_inputs[l]` holds the original inputs of layer l for the probe windows (l = 0..L), the last one
    being the output of the last layer.
    """
    device = next(encoder.parameters()).device
    layers = encoder.layers
    reference = encoder.layer_norm(layer_inputs[-1].to(device))
    gains: dict[Key, float] = {}
    for key in tqdm(sorted(spectra), desc="sensitivity", unit="proj"):
        layer_idx, name = key
        rank, spec = probe_ranks.get(key), spectra[key]
        removed = spec.tail(rank)
        if rank is None or removed <= 0:
            gains[key] = 0.0
            continue
        probe = truncated_layer(layers[layer_idx], name, spec, rank)
        sq_err, frames = 0.0, 0
        for sl in batches(layer_inputs[layer_idx].shape[0], batch_size):
            h = run_layer(probe, layer_inputs[layer_idx][sl].to(device))
            for later in layers[layer_idx + 1 :]:
                h = run_layer(later, h)
            diff = (encoder.layer_norm(h) - reference[sl]).double()
            sq_err += float(diff.square().sum())
            frames += diff.shape[0] * diff.shape[1]
        gains[key] = (sq_err / frames) / removed
    return gains
