"""LiteWhisper: Whisper with low-rank factorized encoder projections (LiteASR).

This file is uploaded to the Hub next to the weights and loaded with `trust_remote_code=True`: it depends only
on torch and transformers. The classes subclass transformers' Whisper classes, so `generate()` (timestamps,
long-form, language detection, prompts) is Whisper's own; only the encoder projections listed in
`config.low_rank_config` differ. Parameter names and factor orientation (`weight1` [in, rank], `weight2`
[rank, out], `bias` [out]) are those of the efficient-speech/lite-whisper-* checkpoints, which load as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.models.whisper.modeling_whisper import (
    WhisperEncoder,
    WhisperEncoderLayer,
    WhisperForConditionalGeneration,
    WhisperModel,
)

from .configuration_lite_whisper import LiteWhisperConfig, projection_shape

# Where each projection named in `low_rank_config` lives inside a Whisper encoder layer.
PROJECTION_MODULES = {
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "out_proj": "self_attn.out_proj",
    "fc1": "fc1",
    "fc2": "fc2",
}


class LowRankLinear(nn.Module):
    """A linear map factorized through `rank` dimensions: `y = x @ weight1 @ weight2 + bias`.

    `weight1` is [in_features, rank] and `weight2` [rank, out_features] (note: transposed with respect to
    `nn.Linear.weight`), as in the efficient-speech checkpoints. The bias is kept even where the dense
    projection had none (Whisper's k_proj): LiteASR's factorization yields one.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        factory = {"device": device, "dtype": dtype}
        self.weight1 = nn.Parameter(torch.empty(in_features, rank, **factory))
        self.weight2 = nn.Parameter(torch.empty(rank, out_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02) -> None:
        """Random factors (for models built from a config alone; real weights come from a checkpoint)."""
        if self.weight1.is_meta:
            return
        nn.init.normal_(self.weight1, std=std)
        nn.init.normal_(self.weight2, std=std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(torch.matmul(x, self.weight1), self.weight2)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, bias={bias}"


def get_projection(layer: nn.Module, name: str) -> nn.Module:
    """The module of projection `name` (a key of PROJECTION_MODULES) in an encoder layer."""
    return layer.get_submodule(PROJECTION_MODULES[name])


def set_projection(layer: nn.Module, name: str, module: nn.Module) -> None:
    """Replace projection `name` of an encoder layer by `module`."""
    parent, _, attr = PROJECTION_MODULES[name].rpartition(".")
    setattr(layer.get_submodule(parent) if parent else layer, attr, module)


class LiteWhisperEncoderLayer(WhisperEncoderLayer):
    """A Whisper encoder layer whose projections listed in `ranks` are LowRankLinear; the others stay dense."""

    def __init__(self, config: LiteWhisperConfig, ranks: dict[str, int]) -> None:
        super().__init__(config)
        for name, rank in ranks.items():
            d_in, d_out = projection_shape(config, name)
            set_projection(self, name, LowRankLinear(d_in, d_out, rank))


class _LiteWhisperMixin:
    """What every LiteWhisper model class adds to its Whisper parent: init of the factors, strict loading."""

    config_class = LiteWhisperConfig
    _no_split_modules = ["LiteWhisperEncoderLayer", "WhisperEncoderLayer", "WhisperDecoderLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, LowRankLinear):
            module.reset_parameters(self.config.init_std)
        else:
            super()._init_weights(module)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        """Whisper's `from_pretrained`, except that weights that do not match the config are an error.

        transformers only warns about missing or unexpected weights and initializes the missing ones at
        random; a LiteWhisper whose `low_rank_config` disagrees with its weights must not load that way.
        Shape mismatches are reported the same way (`ignore_mismatched_sizes` cannot turn this off).
        """
        want_info = kwargs.pop("output_loading_info", False)
        # Let transformers report shape mismatches instead of raising, so that the error below names them.
        kwargs["ignore_mismatched_sizes"] = True
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        _check_loading_info(info)
        return (model, info) if want_info else model


def _check_loading_info(info: dict[str, Any]) -> None:
    """Raise ValueError if a checkpoint lacked weights, had extra ones, or had weights of another shape."""

    def describe(key: Any) -> str:
        if isinstance(key, tuple):  # (name, shape in checkpoint, shape the config asks for)
            return f"{key[0]} (checkpoint {list(key[1])}, config {list(key[2])})"
        return str(key)

    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(describe(k) for k in info.get(kind) or ())
        if keys:
            shown = ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")
            problems.append(f"{kind.replace('_keys', '')} weights: {shown}")
    if problems:
        raise ValueError(
            "The checkpoint does not match its config: " + "; ".join(problems) + ". Each projection listed in "
            "`low_rank_config` must be stored as weight1 [in, rank], weight2 [rank, out] and bias, and every other "
            "projection as a dense weight: fix config.json's `low_rank_config` (or the weights) so that they agree."
        )


class LiteWhisperEncoder(_LiteWhisperMixin, WhisperEncoder):
    """Whisper's encoder with the low-rank projections of `config.low_rank_config`."""

    def __init__(self, config: LiteWhisperConfig) -> None:
        super().__init__(config)
        self.layers = nn.ModuleList(
            [LiteWhisperEncoderLayer(config, config.low_rank_config[i]) for i in range(config.encoder_layers)]
        )
        self.post_init()


class LiteWhisperModel(_LiteWhisperMixin, WhisperModel):
    """WhisperModel (encoder and decoder, no LM head) with a LiteWhisperEncoder."""

    def __init__(self, config: LiteWhisperConfig) -> None:
        super().__init__(config)
        self.encoder = LiteWhisperEncoder(config)
        self.post_init()


class LiteWhisperForConditionalGeneration(_LiteWhisperMixin, WhisperForConditionalGeneration):
    """WhisperForConditionalGeneration with a LiteWhisperEncoder; `generate()` is Whisper's."""

    def __init__(self, config: LiteWhisperConfig) -> None:
        super().__init__(config)
        self.model = LiteWhisperModel(config)
        self.post_init()

    def _prepare_decoder_input_ids_for_generation(
        self, batch_size: int, model_input_name: str, model_kwargs: dict[str, Any], *args: Any, **kwargs: Any
    ) -> tuple[torch.LongTensor, dict[str, Any]]:
        # Whisper's generate() builds the whole decoder prompt, which starts with <|startofprev|> when
        # `prompt_ids` are given; transformers keeps it as is only for model_type "whisper" and would
        # otherwise prepend <|startoftranscript|>. Keep it as is, as for Whisper.
        if model_kwargs is not None and model_kwargs.get("decoder_input_ids") is not None:
            return model_kwargs.pop("decoder_input_ids"), model_kwargs
        return super()._prepare_decoder_input_ids_for_generation(
            batch_size, model_input_name, model_kwargs, *args, **kwargs
        )


__all__ = [
    "PROJECTION_MODULES",
    "LiteWhisperEncoder",
    "LiteWhisperEncoderLayer",
    "LiteWhisperForConditionalGeneration",
    "LiteWhisperModel",
    "LowRankLinear",
    "get_projection",
    "set_projection",
]
