"""Budget: what an encoder costs in parameters and FLOPs at given ranks, computed from the shapes.

Used to turn `--target-params F` / `--target-speedup X` into a budget for the projection weights, to report
the encoder size of a lite model, and by the speed benchmark (FLOP ratio).
"""

from __future__ import annotations

from typing import Mapping

from lite_whisper.compression.ranks import Shape
from lite_whisper.compression.types import Key, Rank
from lite_whisper.modeling import PROJECTIONS



def projection_shapes(config) -> dict[Key, Shape]:
    """(layer, projection) -> Shape for every encoder projection of a Whisper config."""
    d, ffn = config.d_model, config.encoder_ffn_dim
    per_layer = {"q_proj": Shape(d, d), "k_proj": Shape(d, d), "v_proj": Shape(d, d), "out_proj": Shape(d, d),
                 "fc1": Shape(d, ffn), "fc2": Shape(ffn, d)}
    return {(i, p): per_layer[p] for i in range(config.encoder_layers) for p in PROJECTIONS}


def encoder_params(config, ranks: Mapping[Key, Rank] | None = None) -> int:
    """Parameters of the encoder (convolutions, positions, norms, projections) at `ranks` (absent = dense).

    Counts what a LiteWhisper encoder holds: a low-rank k_proj gains a bias (LiteASR's bias correction).
    """
    d, ffn, layers, mels = config.d_model, config.encoder_ffn_dim, config.encoder_layers, config.num_mel_bins
    ranks = ranks or {}
    convs = mels * d * 3 + d + d * d * 3 + d
    positions = config.max_source_positions * d
    norms_and_biases_per_layer = 2 * 2 * d + (3 * d + ffn + d)  # two layer norms; q, v, out, fc1, fc2 biases
    total = convs + positions + 2 * d + layers * norms_and_biases_per_layer
    for key, shape in projection_shapes(config).items():
        rank = ranks.get(key)
        total += shape.weight_params(rank)
        if key[1] == "k_proj" and rank is not None:
            total += d
    return total


def encoder_flops(config, ranks: Mapping[Key, Rank] | None = None) -> int:
    """Multiply-add FLOPs (x2) of one 30 s window through the encoder at `ranks`."""
    d, mels, frames = config.d_model, config.num_mel_bins, config.max_source_positions
    ranks = ranks or {}
    convs = 2 * (2 * frames) * (mels * 3 * d) + 2 * frames * (d * 3 * d)  # conv1 runs at 2x the frame rate
    attention = config.encoder_layers * 2 * (2 * frames * frames * d)  # QK^T and AV
    linear = sum(2 * frames * s.weight_params(ranks.get(k)) for k, s in projection_shapes(config).items())
    return convs + attention + linear


def projection_budget(config, target_params: float | None = None, target_speedup: float | None = None):
    """(budget for the projection weights, cost of one weight parameter) in the unit of the target.

    Parameters: budget = F * dense encoder params - everything that is not a projection weight (the k_proj
    biases a low-rank k_proj gains included). FLOPs: budget = dense FLOPs / X - attention and convolutions.
    """
    shapes = projection_shapes(config)
    dense_weights = sum(s.weight_params(None) for s in shapes.values())
    if target_params is not None:
        if not 0 < target_params <= 1:
            raise ValueError(f"--target-params {target_params}: expected a fraction of the encoder in (0, 1]")
        everything_else = encoder_params(config) - dense_weights + config.encoder_layers * config.d_model
        return target_params * encoder_params(config) - everything_else, 1.0
    if target_speedup is None or target_speedup < 1:
        raise ValueError(f"--target-speedup {target_speedup}: expected a FLOP speedup >= 1, e.g. 1.5")
    per_param = 2.0 * config.max_source_positions
    everything_else = encoder_flops(config) - per_param * dense_weights
    return encoder_flops(config) / target_speedup - everything_else, per_param


def low_rank_config(num_layers: int, ranks: Mapping[Key, Rank]) -> list[dict[str, int]]:
    """Ranks as LiteWhisperConfig's low_rank_config: one {projection: rank} dict per layer, dense ones left out."""
    return [{p: ranks[(i, p)] for p in PROJECTIONS if ranks.get((i, p)) is not None} for i in range(num_layers)]
