"""Configuration of LiteWhisper: a Whisper whose encoder projections may be low-rank factorized.

This file is uploaded to the Hub next to the weights and loaded with `trust_remote_code=True`: it depends only
on the Python standard library and transformers.
"""

from __future__ import annotations

from typing import Any

from transformers import WhisperConfig

# The six linear projections of a Whisper encoder layer, by the names used in `low_rank_config`.
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def projection_shape(config: WhisperConfig, name: str) -> tuple[int, int]:
    """(in_features, out_features) of encoder projection `name` for this model size."""
    d_model, d_ffn = config.d_model, config.encoder_ffn_dim
    if name == "fc1":
        return d_model, d_ffn
    if name == "fc2":
        return d_ffn, d_model
    if name in PROJECTIONS:
        return d_model, d_model
    raise ValueError(f"unknown encoder projection {name!r}: expected one of {', '.join(PROJECTIONS)}")


def validate_low_rank_config(low_rank_config: Any, config: WhisperConfig) -> list[dict[str, int]]:
    """Check `low_rank_config` against the model shape and return it as a list of plain {name: rank} dicts.

    Raises ValueError naming the encoder layer and the projection at fault, and what would be valid.
    """
    layers = config.encoder_layers
    if not isinstance(low_rank_config, (list, tuple)):
        raise ValueError(
            f"low_rank_config must be a list with one dict per encoder layer ({layers}), "
            f"got {type(low_rank_config).__name__}"
        )
    if len(low_rank_config) != layers:
        raise ValueError(
            f"low_rank_config has {len(low_rank_config)} entries but the encoder has {layers} layers: "
            "give one dict per encoder layer ({} for a layer that stays dense)"
        )
    checked = []
    for layer, ranks in enumerate(low_rank_config):
        if not isinstance(ranks, dict):
            raise ValueError(
                f"low_rank_config[{layer}] (encoder layer {layer}) must be a dict mapping projection name to rank, "
                f"got {type(ranks).__name__}"
            )
        for name, rank in ranks.items():
            if name not in PROJECTIONS:
                raise ValueError(
                    f"low_rank_config[{layer}] (encoder layer {layer}) names unknown projection {name!r}: "
                    f"expected one of {', '.join(PROJECTIONS)}"
                )
            d_in, d_out = projection_shape(config, name)
            limit = min(d_in, d_out)
            # bool is an int subclass; a rank of True is a typo, not a rank of 1.
            if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= limit:
                raise ValueError(
                    f"low_rank_config[{layer}][{name!r}] (encoder layer {layer}, {name}): {rank!r} is not a valid rank "
                    f"for a {d_in}x{d_out} projection: use an integer in [1, {limit}], or leave {name!r} out to "
                    "keep it dense"
                )
        checked.append({name: int(rank) for name, rank in ranks.items()})
    return checked


class LiteWhisperConfig(WhisperConfig):
    """WhisperConfig plus `low_rank_config`: one dict per encoder layer, projection name -> rank.

    A projection absent from its layer's dict stays a dense `nn.Linear`. The key, its meaning and
    `model_type = "lite-whisper"` are those of the efficient-speech/lite-whisper-* checkpoints, so their
    config.json files load as they are. `low_rank_config=None` means every projection is dense.
    """

    model_type = "lite-whisper"

    def __init__(self, low_rank_config: list[dict[str, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if low_rank_config is None:
            low_rank_config = [{} for _ in range(self.encoder_layers)]
        self.low_rank_config = validate_low_rank_config(low_rank_config, self)


__all__ = ["PROJECTIONS", "LiteWhisperConfig", "projection_shape", "validate_low_rank_config"]
