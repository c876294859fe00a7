"""LiteWhisper: Whisper with low-rank factorized encoder projections (LiteASR).

This file is uploaded to the Hub next to the weights and loaded with `trust_remote_code=True`: it depends only
on torch and transformers. The classes subclass transformers' Whisper classes, so `generate()` (timestamps,
long-form, language detection, prompts) is Whisper's own; only the encoder projections listed in
`config.low_rank_config` differ. Parameter names and factor orientation (`weight1` [in, rank], `weight2`
[rank, out], `bias` [out]) are those of the efficient-speech/lite-whisper-* checkpoints, which load as they are.
"""

from __future__ import annotations

import inspect
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

# Imported so that the pipeline's file travels with the model code: transformers' `save_pretrained` copies a remote
# model class's file and the files it imports relatively, and config.json's `custom_pipelines` names this one. A
# model loaded with trust_remote_code, fine-tuned and saved (Seq2SeqTrainer, push_to_hub) thus keeps its pipeline.
from .pipeline_lite_whisper import LiteWhisperPipeline  # noqa: F401

# transformers 4.x encoder layers take a head mask and return a tuple (hidden_states, ...); 5.x return a tensor.
_LAYER_RETURNS_TUPLE = "layer_head_mask" in inspect.signature(WhisperEncoderLayer.forward).parameters

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
    """A Whisper encoder layer whose projections listed in `ranks` are LowRankLinear; the others stay dense.

    In inference (eval mode, SDPA attention, no attention weights or head mask asked for) the layer runs a
    fast path that computes the same function with fewer kernels, copies and allocations: one GEMM for the
    first factors of the low-rank q, k and v projections (they share their input), biases and the query scaling
    inside the GEMMs (`addmm`'s beta and alpha), residuals added in place, and SDPA reading strided views of
    q, k and v (Whisper's attention copies each one). Everything else (training, eager or other attention
    implementations, `output_attentions`, offloaded weights) runs Whisper's own forward. Set `fast_path =
    False` on a layer to run Whisper's forward always (the reference the fast path is tested against).

    Attention in the factors' reduced dimension (LiteASR) is not used: SDPA's fused kernels need equal q/k and
    v head sizes (else the math path runs, 4x slower on CPU), which pays only where the k and v ranks are both
    below Whisper's head size of 64, and converted models keep v above it.
    """

    def __init__(self, config: LiteWhisperConfig, ranks: dict[str, int]) -> None:
        super().__init__(config)
        for name, rank in ranks.items():
            d_in, d_out = projection_shape(config, name)
            set_projection(self, name, LowRankLinear(d_in, d_out, rank))
        self.fast_path = True
        self._fused_qkv: tuple[tuple, torch.Tensor] | None = None  # (key of the weights, concatenated weight1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args: Any,
                **kwargs: Any):
        if not args and self._use_fast_path(attention_mask, kwargs):
            hidden_states = self._fast_forward(hidden_states)
            return (hidden_states,) if _LAYER_RETURNS_TUPLE else hidden_states
        return super().forward(hidden_states, attention_mask, *args, **kwargs)

    def _use_fast_path(self, attention_mask: torch.Tensor | None, kwargs: dict[str, Any]) -> bool:
        attn = self.self_attn
        projections = (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj, self.fc1, self.fc2)
        return (
            self.fast_path
            and not self.training
            and attention_mask is None
            and kwargs.get("layer_head_mask") is None
            and attn.config._attn_implementation == "sdpa"
            and not kwargs.get("output_attentions", attn.config.output_attentions)
            # Weights offloaded by accelerate (device_map with disk/CPU offload) are loaded by hooks on each
            # projection's forward, which the fast path does not call.
            and not any(p.is_meta for m in projections for p in m.parameters(recurse=False))
        )

    def _fast_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        attn = self.self_attn
        batch, length, width = hidden_states.shape
        x = hidden_states.reshape(batch * length, width)
        q, k, v = self._project_qkv(self.self_attn_layer_norm(x))
        heads = (batch, length, attn.num_heads, attn.head_dim)
        # Strided [batch, heads, length, head_dim] views: SDPA reads them in place and writes its output
        # in [batch, length, heads, head_dim] order, so the reshape below is a view too.
        out = nn.functional.scaled_dot_product_attention(
            *(t.view(heads).transpose(1, 2) for t in (q, k, v)), scale=1.0  # q is scaled already, as in Whisper
        )
        x = _linear(attn.out_proj, out.transpose(1, 2).reshape(batch * length, width), residual=x)
        hidden = self.activation_fn(_linear(self.fc1, self.final_layer_norm(x)))
        x = _linear(self.fc2, hidden, residual=x)
        if x.dtype == torch.float16:  # as Whisper's layer does
            clamp = torch.finfo(x.dtype).max - 1000
            x = torch.clamp(x, min=-clamp, max=clamp)
        return x.view(batch, length, width)

    def _project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (scaled), k and v of the normalized input `x` [tokens, width]."""
        attn = self.self_attn
        projections = (attn.q_proj, attn.k_proj, attn.v_proj)
        first = [None, None, None]
        fused = self._fused_weight1()
        if fused is not None:  # one GEMM for every low-rank first factor, then column views of its output
            reduced, start = x @ fused, 0
            for i, proj in enumerate(projections):
                if isinstance(proj, LowRankLinear):
                    first[i], start = reduced[:, start : start + proj.rank], start + proj.rank
        scales = (attn.scaling, 1.0, 1.0)
        return tuple(_linear(p, x, first=f, scale=s) for p, f, s in zip(projections, first, scales))

    def _fused_weight1(self) -> torch.Tensor | None:
        """weight1 of the low-rank q, k, v projections side by side [width, sum of ranks] (None if fewer than 2).

        Cached for inference, keyed on the factors' storage and version, so that it follows `.to()`, loading
        and in-place updates; the state dict is unchanged. Built afresh while autograd or torch.compile trace.
        """
        attn = self.self_attn
        weights = [p.weight1 for p in (attn.q_proj, attn.k_proj, attn.v_proj) if isinstance(p, LowRankLinear)]
        if len(weights) < 2:
            return None
        if _is_compiling() or (torch.is_grad_enabled() and any(w.requires_grad for w in weights)):
            return torch.cat(weights, dim=1)
        key = tuple((w.data_ptr(), w._version, w.dtype, w.device) for w in weights)
        if self._fused_qkv is None or self._fused_qkv[0] != key:
            with torch.no_grad():
                self._fused_qkv = (key, torch.cat(weights, dim=1))
        return self._fused_qkv[1]

    def _apply(self, fn, *args: Any, **kwargs: Any):
        self._fused_qkv = None  # `.to()`, `.half()`, ...: the cached concatenation follows the weights anew
        return super()._apply(fn, *args, **kwargs)


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)  # torch < 2.3 has no torch.compiler.is_compiling
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()


def _linear(
    module: nn.Module,
    x: torch.Tensor,
    *,
    first: torch.Tensor | None = None,
    scale: float = 1.0,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """`scale * module(x) (+ residual)` for a LowRankLinear or nn.Linear on 2-D `x`, in few passes over memory.

    `first` is `x @ module.weight1` when already computed. The bias and the scale are fused into the GEMM
    (`addmm`'s beta and alpha); the residual is added in place afterwards (accumulating the GEMM into the
    residual instead would round its partial sums at the residual's larger scale)."""
    if isinstance(module, LowRankLinear):
        x = x @ module.weight1 if first is None else first
        weight = module.weight2
    else:
        weight = module.weight.t()
    if module.bias is not None:
        out = torch.addmm(module.bias, x, weight, beta=scale, alpha=scale)
    else:
        out = x @ weight
        if scale != 1.0:
            out.mul_(scale)
    return out if residual is None else out.add_(residual)


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
